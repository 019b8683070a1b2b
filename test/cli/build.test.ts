import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildLogWriter } from '../../src/builder/logs/writer.ts';
import type { BuildResource, IssuedTriggerResource, TriggerResource } from '../../src/cli/resources.ts';
import { buildStartArgs, customGitTriggerArgs, recordFields, tableRows, useCliGateway } from './cli-user.ts';

/** `slipway trigger` and `slipway build` against a gateway with authentication on; no builder runs. */
describe('slipway trigger and build', () => {
  const gateway = useCliGateway();
  let redis: Redis;

  beforeAll(async () => {
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
    redis = gateway.slipway.services.redis.connect();
  });

  afterAll(() => {
    redis?.disconnect();
  });

  it('creates a GitHub trigger and prints its webhook URL and secret once, with what to do with them', async () => {
    const result = await gateway.root.run(
      [
        'trigger',
        'create',
        '--repo',
        'acme/app',
        '--github',
        '--clone-url',
        'https://github.com/acme/app.git',
        '--ref-filter',
        'heads/main',
        '--build-arg',
        'NODE_ENV=production',
        '--tag',
        '${branch}',
        '--tag',
        'sha-${short_sha}',
        '--no-latest',
        '--token-stdin',
        '--token-user',
        'x-access-token',
      ],
      { stdin: 'ghp_cli-clone-token\n' },
    );
    expect(result.code).toBe(0);
    const id = /trigger ([0-9a-f-]{36})/.exec(result.stdout)![1]!;
    expect(result.stdout).toContain(`webhook url:    ${gateway.slipway.url}/webhooks/github/${id}`);
    expect(result.stdout).toMatch(/webhook secret: [0-9a-f]{64}/);
    expect(result.stderr).toContain('In GitHub, add a webhook');
    expect(result.stderr).toContain('will not be shown again');

    const shown = recordFields(await gateway.root.ok(['trigger', 'show', id]));
    expect(shown).toMatchObject({
      repository: 'acme/app',
      provider: 'GitHub',
      credentials: 'token of x-access-token (never shown)',
      'ref filter': 'heads/main',
      'build args': 'NODE_ENV=production',
      tags: '${branch}, sha-${short_sha}',
      latest: 'no',
    });
    const rows = tableRows(await gateway.root.ok(['trigger', 'list', '--repo', 'acme/app']));
    expect(rows.map((row) => row.id)).toEqual([id]);
  });

  it('disables, enables, rotates and deletes a trigger; prints a hook script for custom git', async () => {
    const created = await gateway.root.json<IssuedTriggerResource>(
      customGitTriggerArgs('acme/app', 'git@git.example.com:acme/app.git'),
    );
    expect(created.webhookUrl).toBe(`${gateway.slipway.url}/webhooks/git/${created.id}`);
    expect(await gateway.root.ok(['trigger', 'disable', created.id])).toContain('is disabled');
    expect((await gateway.root.json<TriggerResource>(['trigger', 'show', created.id])).enabled).toBe(false);
    expect(await gateway.root.ok(['trigger', 'enable', created.id])).toContain('is enabled');

    const rotated = await gateway.root.json<IssuedTriggerResource>(['trigger', 'rotate-secret', created.id]);
    expect(rotated.webhookSecret).not.toBe(created.webhookSecret);

    const fromEnv = await gateway.root.ok([
      'trigger',
      'hook-script',
      created.id,
      '--secret-env',
      'HOOK_SECRET',
    ]);
    expect(fromEnv).toMatch(/^#!\/bin\/sh\n/);
    expect(fromEnv).toContain('secret="$HOOK_SECRET"');
    const embedded = await gateway.root.run(['trigger', 'hook-script', created.id]);
    expect(embedded.stdout).toContain(rotated.webhookSecret);
    expect(embedded.stderr).toContain('keep it readable only by the git user');

    expect(await gateway.root.ok(['trigger', 'delete', created.id])).toContain('deleted');
    const gone = await gateway.root.run(['trigger', 'show', created.id]);
    expect(gone.code).toBe(2);
  });

  it('starts, lists, shows and cancels builds', async () => {
    const usage = await gateway.root.run(['build', 'start', '--repo', 'acme/app', '--ref', 'main']);
    expect(usage.code).toBe(2);
    const started = await gateway.root.json<BuildResource>(
      buildStartArgs(
        'acme/app',
        'https://git.example.com/acme/app.git',
        '--commit',
        '3f786850e387550fdab836ed7e6dc881de23001b',
        '--tag',
        'edge',
      ),
    );
    expect(started).toMatchObject({ phase: 'waiting', tags: ['edge'], requestedBy: 'root' });

    const rows = tableRows(await gateway.root.ok(['build', 'list', '--repo', 'acme/app']));
    expect(rows[0]).toMatchObject({ id: started.id, phase: 'waiting', source: '3f78685', tags: 'edge' });
    expect(recordFields(await gateway.root.ok(['build', 'show', started.id]))).toMatchObject({
      phase: 'waiting',
      commit: '3f786850e387550fdab836ed7e6dc881de23001b',
    });
    expect(await gateway.root.ok(['build', 'cancel', started.id])).toContain('is cancelled');
    const again = await gateway.root.run(['build', 'cancel', started.id]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('has ended already');
  });

  it('prints a log, and follows one live with -f until the build ends, exiting 1 unless it completed', async () => {
    const start = () =>
      gateway.root.json<BuildResource>(
        buildStartArgs('acme/app', 'https://git.example.com/acme/app.git', '--ref', 'main'),
      );
    const writerFor = (buildId: string) =>
      new BuildLogWriter({ redis, keyPrefix: gateway.slipway.services.buildLogs.keyPrefix, buildId });

    const done = await start();
    const finished = writerFor(done.id);
    finished.phase('building');
    finished.line('stdout', 'STEP 1/2: FROM alpine');
    await finished.end('complete');
    expect(await gateway.root.ok(['build', 'logs', done.id])).toBe(
      '==> building\nSTEP 1/2: FROM alpine\n==> build ended: complete\n',
    );
    const followedDone = await gateway.root.run(['build', 'logs', done.id, '-f']);
    expect(followedDone.code).toBe(0);

    const live = await start();
    const writer = writerFor(live.id);
    writer.phase('building');
    writer.line('stdout', 'before the follower');
    await writer.flush();
    const following = gateway.root.run(['build', 'logs', live.id, '-f']);
    await sleep(1500);
    writer.line('stderr', 'error: no space left on device');
    await writer.end('error');
    const result = await following;
    expect(result.stdout).toBe(
      '==> building\nbefore the follower\nerror: no space left on device\n==> build ended: error\n',
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`build ${live.id} ended error`);
  });
});
