import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MirrorRunDetailsResource } from '../../src/cli/resources.ts';
import type { RepositoryName } from '../../src/registry/names.ts';
import { DistributionOciClient, startDistribution, type TestDistribution } from '../helpers/distribution.ts';
import { tableRows, useCliGateway } from './cli-user.ts';

/** `slipway mirror sync|dry-run|runs|cancel` against a gateway whose worker runs the syncs. */
describe('slipway mirror sync', () => {
  const gateway = useCliGateway({ config: { mirrors: { worker: true } } });
  let upstream: TestDistribution;

  beforeAll(async () => {
    upstream = await startDistribution();
    const pusher = new DistributionOciClient(upstream.url);
    for (const version of ['1.0', '1.1', '2.0']) {
      await pusher.pushImage('team/app', version, { layers: [randomBytes(2048)] });
    }
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['robot', 'create', 'acme+mirror']);
    for (const [repository, remote] of [
      ['acme/app', 'team/app'],
      ['acme/missing', 'team/missing'],
    ]) {
      await gateway.root.ok([
        'mirror',
        'create',
        repository!,
        '--from',
        `${upstream.url}/${remote}`,
        '--robot',
        'mirror',
        '--disabled',
      ]);
    }
  });

  afterAll(async () => {
    await upstream?.stop();
  });

  /** The tag lines a followed run printed: outcome and tag. */
  const tagLines = (stdout: string) =>
    stdout
      .trim()
      .split('\n')
      .filter((line) => !line.startsWith('run '))
      .map((line) => line.split(/\s+/).slice(0, 2).join(' '))
      .sort();

  it('dry-run prints what a sync would copy and changes nothing', async () => {
    const dry = await gateway.root.run(['mirror', 'dry-run', 'acme/app']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(tagLines(dry.stdout)).toEqual(['would-copy 1.0', 'would-copy 1.1', 'would-copy 2.0']);
    expect(dry.stdout).toMatch(/^run \d+ of acme\/app success \(3 would-copy; 0 B copied in [\d.]+s\)$/m);
    const tags = await gateway.slipway.services.store.listTags('acme/app' as RepositoryName, {});
    expect(tags.items).toEqual([]);
  });

  it('sync --wait follows the run tag by tag; a second sync finds every tag unchanged', async () => {
    const first = await gateway.root.run(['mirror', 'sync', 'acme/app', '--wait']);
    expect(first.code, first.stderr).toBe(0);
    expect(tagLines(first.stdout)).toEqual(['copied 1.0', 'copied 1.1', 'copied 2.0']);
    expect(first.stdout).toMatch(/^copied +1\.0 +sha256:[0-9a-f]{12} +[\d.]+ KiB$/m);
    expect(first.stdout).toMatch(/^run \d+ of acme\/app success \(3 copied; [\d.]+ KiB copied/m);

    const second = await gateway.root.json<MirrorRunDetailsResource>([
      'mirror',
      'sync',
      'acme/app',
      '--wait',
    ]);
    expect(second).toMatchObject({ state: 'success', totals: { copied: 0, unchanged: 3 } });

    const runs = tableRows(await gateway.root.ok(['mirror', 'runs', 'acme/app']));
    expect(runs.map((run) => [run.trigger, run.state, run.tags])).toEqual([
      ['manual', 'success', '3 unchanged'],
      ['manual', 'success', '3 copied'],
      ['manual (dry run)', 'success', '3 would-copy'],
    ]);
    const shown = await gateway.root.ok(['mirror', 'runs', 'acme/app', '--run', String(second.id)]);
    expect(tagLines(shown)).toEqual(['unchanged 1.0', 'unchanged 1.1', 'unchanged 2.0']);
  });

  it('sync --wait exits 1 when the run fails, saying why', async () => {
    const failed = await gateway.root.run(['mirror', 'sync', 'acme/missing', '--wait']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/^run \d+ of acme\/missing failed: .*team\/missing/m);
    expect(failed.stderr).toContain('the sync failed');
  });

  it('sync without --wait says the run is queued; cancel with nothing under way is refused', async () => {
    const queued = await gateway.root.ok(['mirror', 'sync', 'acme/app']);
    expect(queued).toMatch(/^run \d+ of acme\/app is (queued|syncing|success)/);
    await gateway.root.ok(['mirror', 'sync', 'acme/app', '--wait']).catch(() => {});
    const nothing = await gateway.root.run(['mirror', 'cancel', 'acme/app']);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('acme/app has no sync under way');
  });
});
