import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuilderResource } from '../../src/cli/commands/builder.ts';
import type { BuildResource } from '../../src/cli/resources.ts';
import { buildahBuilderArgs, spawnBuilder } from '../builder/fixtures.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { startStallingServer, type StallingServer } from '../helpers/stalling-server.ts';
import { requireTool, waitFor } from '../helpers/tools.ts';
import type { SlipwayProcess } from '../helpers/worker-process.ts';
import { buildStartArgs, CliUser, tableRows, useCliGateway } from './cli-user.ts';

const builderSecret = 'builder-secret-0123456789abcdef0123456789';
const commit = '3f786850e387550fdab836ed7e6dc881de23001b';

/**
 * `slipway builder list` against a gateway with a real `slipway builder` process; its builds clone from
 * a git remote that never answers, so they stay `cloning` while the test looks.
 */
describe('slipway builder list', () => {
  const gateway = useCliGateway({ config: { builds: { builderSecret } } });
  let workspace: ContainersWorkspace;
  let remote: StallingServer;
  let builder: SlipwayProcess | undefined;

  const builders = () => gateway.root.json<BuilderResource[]>(['builder', 'list']);

  /** The two tables `builder list` prints: the builders, and the builds they hold (when any). */
  const printedTables = async () => {
    const [builderTable, buildTable] = (await gateway.root.ok(['builder', 'list'])).split('\n\n');
    return { builders: tableRows(builderTable!), builds: buildTable ? tableRows(buildTable) : [] };
  };

  beforeAll(async () => {
    requireTool('git', 'git');
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
    workspace = await ContainersWorkspace.create('slipway-cli-builder-');
    remote = await startStallingServer();
  });

  afterAll(async () => {
    await builder?.kill();
    await remote?.close();
    await workspace?.remove();
  });

  it('still needs --gateway to start a builder', async () => {
    const user = await CliUser.create();
    try {
      const result = await user.run(['builder', '--name', 'nowhere']);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("required option '--gateway <url>' not specified");
    } finally {
      await user.remove();
    }
  });

  it('shows a builder started with `slipway builder --gateway` and the build it runs, until it stops', async () => {
    expect((await gateway.root.ok(['builder', 'list'])).trim()).toBe('no builders are taking builds');
    builder = spawnBuilder(
      workspace,
      { gateway: gateway.slipway.url, name: 'cli-builder', secret: builderSecret },
      [...buildahBuilderArgs(workspace, 'builder'), '--work-dir', workspace.path('checkouts')],
    );
    const [announced] = await waitFor(
      'the builder to announce itself',
      async () => {
        const listed = await builders();
        return listed.length > 0 ? listed : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${builder?.output()}`);
    });
    expect(announced).toMatchObject({
      name: 'cli-builder',
      state: 'live',
      executor: 'buildah',
      concurrency: 1,
      host: hostname(),
      pid: builder.child.pid,
      builds: [],
    });

    const build = await gateway.root.json<BuildResource>(
      buildStartArgs('acme/app', `${remote.url}/acme/app.git`, '--commit', commit),
    );
    await waitFor(
      'the builder to fetch from the remote',
      () => (remote.requests.length > 0 ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );
    const printed = await printedTables();
    expect(printed.builders).toEqual([
      expect.objectContaining({ name: 'cli-builder', state: 'live', executor: 'buildah', builds: '1/1' }),
    ]);
    expect(printed.builds).toEqual([
      expect.objectContaining({
        builder: 'cli-builder',
        build: build.id,
        repository: 'acme/app',
        phase: 'cloning',
      }),
    ]);

    expect(await builder.terminate()).toBe(0);
    builder = undefined;
    expect(await builders()).toEqual([]);
    expect((await gateway.root.ok(['builder', 'list'])).trim()).toBe('no builders are taking builds');
  });

  it('lists a builder gone silent that still holds a build, and says why the build hangs', async () => {
    const build = await gateway.root.json<BuildResource>(
      buildStartArgs('acme/app', `${remote.url}/acme/app.git`, '--ref', 'main'),
    );
    await gateway.slipway.services.buildService.claim(build.id, 'vanished-builder');
    const result = await gateway.root.run(['builder', 'list']);
    expect(result.code).toBe(0);
    const [builderTable, buildTable] = result.stdout.split('\n\n');
    expect(tableRows(builderTable!)).toEqual([
      expect.objectContaining({ name: 'vanished-builder', state: 'gone', executor: '-', builds: '1' }),
    ]);
    expect(tableRows(buildTable!)).toEqual([
      expect.objectContaining({ builder: 'vanished-builder', build: build.id, phase: 'cloning' }),
    ]);
    expect(result.stderr).toContain('vanished-builder announces itself no more');
  });

  it('is refused to users who are not superusers', async () => {
    const user = await gateway.signedUpUser('bob');
    const result = await user.run(['builder', 'list']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('only superusers');
  });
});
