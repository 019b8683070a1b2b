import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  MirrorResource,
  MirrorRunDetailsResource,
  MirrorRunResource,
} from '../../../src/cli/resources.ts';
import { unstartedRunError } from '../../../src/mirror/sync/mirror-runner.ts';
import type { RepositoryName } from '../../../src/registry/names.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import type { CountingProxy } from '../../helpers/counting-proxy.ts';
import { startProxiedUpstream, type ProxiedUpstream } from '../../helpers/proxied-upstream.ts';
import { IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';
import { waitFor } from '../../helpers/tools.ts';

type Run = MirrorRunDetailsResource;

/**
 * Mirror syncs as users start and watch them: through /api/v1 on a gateway whose worker runs them,
 * from a Distribution upstream on loopback (behind a proxy that can hold blob bodies), and on their
 * BullMQ schedules.
 */
describe('mirror syncs through the API and the worker', () => {
  const versions = ['1.0', '1.1', '2.0'];
  let upstream: ProxiedUpstream;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let idle: TestSlipway;
  let api: ApiCaller;
  let idleApi: ApiCaller;

  beforeAll(async () => {
    upstream = await startProxiedUpstream();
    ({ counter } = upstream);
    const { pusher } = upstream;
    for (const version of versions) {
      await pusher.pushImage('team/app', version, { layers: [randomBytes(4096)] });
    }
    // Blobs of its own: a blob stored once is linked by later syncs, never downloaded again.
    await pusher.pushImage('team/held', '1.0', { layers: [randomBytes(64 * 1024)] });
    [slipway, idle] = await Promise.all([
      startSecuredSlipway({ database: 'postgres', config: { mirrors: { worker: true } } }),
      // No worker here: runs asked for wait in the queue.
      startSecuredSlipway({ config: { mirrors: { worker: false, queueTimeout: 1 } } }),
    ]);
    for (const gateway of [slipway, idle]) {
      const fixtures = await IdentityFixtures.of(gateway);
      await fixtures.organization('acme');
      await fixtures.robot('acme', 'mirror');
    }
    api = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    idleApi = ApiCaller.as(idle, basic(adminUser, adminPassword));
  });

  afterAll(async () => {
    await slipway?.stop();
    await idle?.stop();
    await upstream?.stop();
  });

  async function createMirror(
    caller: ApiCaller,
    repository: string,
    settings: Record<string, unknown> = {},
  ): Promise<MirrorResource> {
    const created = await caller.post<MirrorResource>('/mirrors', {
      repository,
      upstream: { url: counter.url, repository: 'team/app' },
      robot: 'mirror',
      // Created disabled unless a test is about the schedule: then only what it starts runs.
      enabled: false,
      ...settings,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body;
  }

  const mirrorIdOf = async (repository: string) => (await slipway.services.mirrors.get(repository))!.id;

  const runOf = async (caller: ApiCaller, repository: string, id: number) =>
    (await caller.get<Run>(`/mirrors/${repository}/runs/${id}`)).body;

  async function finishedRun(caller: ApiCaller, repository: string, id: number): Promise<Run> {
    return waitFor(
      `run ${id} of ${repository} to end`,
      async () => {
        const run = await runOf(caller, repository, id);
        return run.state !== 'queued' && run.state !== 'syncing' ? run : undefined;
      },
      { timeoutMs: 20_000 },
    );
  }

  const localTags = async (repository: string) =>
    (await slipway.services.store.listTags(repository as RepositoryName, {})).items;

  it('sync now queues a run that a worker starts; its tags and totals are there to read', async () => {
    await createMirror(api, 'acme/now');
    const asked = await api.post<MirrorRunResource>('/mirrors/acme/now/sync', {});
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ repository: 'acme/now', trigger: 'manual', dryRun: false });
    expect(['queued', 'syncing', 'success']).toContain(asked.body.state);

    const run = await finishedRun(api, 'acme/now', asked.body.id);
    expect(run).toMatchObject({ state: 'success', error: null, totals: { copied: 3, failed: 0 } });
    expect(run.tags.map((t) => t.tag).sort()).toEqual(versions);
    expect((await localTags('acme/now')).sort()).toEqual(versions);

    const history = await api.get<{ runs: MirrorRunResource[] }>('/mirrors/acme/now/runs');
    expect(history.body.runs.map((r) => r.id)).toEqual([asked.body.id]);
    expect(history.body.runs[0]).not.toHaveProperty('tags');
    expect(await api.get('/mirrors/acme/now')).toMatchObject({ body: { state: 'success' } });
  });

  it('answers 409 while a run is under way, and cancel stops it mid-copy', async () => {
    await createMirror(api, 'acme/held', { upstream: { url: counter.url, repository: 'team/held' } });
    const release = upstream.hold((request) => request.url.includes('/blobs/'), 100);
    try {
      const asked = await api.post<MirrorRunResource>('/mirrors/acme/held/sync', {});
      expect(asked.status).toBe(202);
      await waitFor('the run to start', async () =>
        (await runOf(api, 'acme/held', asked.body.id)).state === 'syncing' ? true : undefined,
      );

      const again = await api.post('/mirrors/acme/held/sync', { dryRun: true });
      expect(again.status).toBe(409);
      expect(again.body.error?.message).toContain(`run ${asked.body.id}`);

      const cancel = await api.post<MirrorRunResource>('/mirrors/acme/held/cancel');
      expect(cancel.status).toBe(202);
      expect(cancel.body).toMatchObject({ id: asked.body.id, cancelRequested: true });
      const run = await finishedRun(api, 'acme/held', asked.body.id);
      expect(run.state).toBe('cancelled');
      expect(await localTags('acme/held')).toEqual([]);
    } finally {
      release();
    }
    const nothing = await api.post('/mirrors/acme/held/cancel');
    expect(nothing.status).toBe(409);
    expect(nothing.body.error?.message).toContain('no sync under way');
  });

  it('a dry run lists what would be copied and changes nothing', async () => {
    await createMirror(api, 'acme/dry', { filter: { include: ['1.*'] } });
    const asked = await api.post<MirrorRunResource>('/mirrors/acme/dry/sync', { dryRun: true });
    const run = await finishedRun(api, 'acme/dry', asked.body.id);
    expect(run).toMatchObject({ state: 'success', dryRun: true, bytesCopied: 0 });
    const outcomes = Object.fromEntries(run.tags.map((t) => [t.tag, t.outcome]));
    expect(outcomes).toEqual({ '1.0': 'would-copy', '1.1': 'would-copy', '2.0': 'skipped' });
    expect(await localTags('acme/dry')).toEqual([]);
    expect(await api.get('/mirrors/acme/dry')).toMatchObject({ body: { state: 'never_run' } });
  });

  it('an enabled mirror syncs on its schedule at once, and says when it syncs next', async () => {
    const before = Date.now();
    await createMirror(api, 'acme/scheduled', { enabled: true, schedule: { interval: '1h' } });
    const runs = await waitFor(
      'the scheduled run to end',
      async () => {
        const { runs } = (await api.get<{ runs: MirrorRunResource[] }>('/mirrors/acme/scheduled/runs')).body;
        return runs[0]?.state === 'success' ? runs : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ trigger: 'schedule', totals: { copied: 3 } });
    const mirror = (await api.get<MirrorResource>('/mirrors/acme/scheduled')).body;
    const next = Date.parse(mirror.nextRunAt!);
    expect(next).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(next).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
  });

  it('follows the mirror: a cron schedule runs at its next time, disabling removes the schedule', async () => {
    const created = await createMirror(api, 'acme/cron', { enabled: true, schedule: { cron: '0 3 * * *' } });
    const id = await mirrorIdOf('acme/cron');
    const next = new Date(created.nextRunAt!);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect([next.getUTCHours(), next.getUTCMinutes(), next.getUTCSeconds()]).toEqual([3, 0, 0]);
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(24 * 3600_000);
    expect(await slipway.services.mirrorQueue.nextRun(id)).toEqual(next);

    const disabled = await api.patch<MirrorResource>('/mirrors/acme/cron', { enabled: false });
    expect(disabled.body.nextRunAt).toBeNull();
    expect(await slipway.services.mirrorQueue.nextRun(id)).toBeNull();

    const weekly = await api.patch<MirrorResource>('/mirrors/acme/cron', {
      enabled: true,
      schedule: { cron: '30 4 * * 1' },
    });
    const monday = new Date(weekly.body.nextRunAt!);
    expect([monday.getUTCDay(), monday.getUTCHours(), monday.getUTCMinutes()]).toEqual([1, 4, 30]);

    expect((await api.delete('/mirrors/acme/cron')).status).toBe(204);
    expect(await slipway.services.mirrorQueue.nextRun(id)).toBeNull();
    // None of it synced: a cron schedule waits for its time.
    const { rows } = await slipway.services.db.query(
      `SELECT 1 FROM mirror_runs mr JOIN mirrors m ON m.id = mr.mirror_id WHERE m.id = $1`,
      [id],
    );
    expect(rows).toEqual([]);
  });

  it('schedules lost with Redis come back from the mirrors table', async () => {
    const created = await createMirror(api, 'acme/restored', {
      enabled: true,
      schedule: { interval: '6h' },
      startAt: new Date(Date.now() + 24 * 3600_000).toISOString(),
    });
    const id = await mirrorIdOf('acme/restored');
    const { mirrorQueue, mirrors } = slipway.services;
    const scheduled = await mirrorQueue.nextRun(id);
    expect(scheduled?.toISOString()).toBe(created.startAt);
    await mirrorQueue.unschedule(id);
    expect(await mirrorQueue.nextRun(id)).toBeNull();

    const next = await mirrorQueue.reconcile(await mirrors.list());
    expect(next.get(id)).toEqual(scheduled);
    expect(await mirrorQueue.nextRun(id)).toEqual(scheduled);
  });

  it('a queued run can be cancelled before it starts; one no worker starts fails, saying why', async () => {
    await createMirror(idleApi, 'acme/waiting');
    const first = await idleApi.post<MirrorRunResource>('/mirrors/acme/waiting/sync', {});
    expect(first.body.state).toBe('queued');
    const cancelled = await idleApi.post<MirrorRunResource>('/mirrors/acme/waiting/cancel');
    expect(cancelled.body).toMatchObject({ id: first.body.id, state: 'cancelled' });
    expect((await runOf(idleApi, 'acme/waiting', first.body.id)).finishedAt).not.toBeNull();

    const second = await idleApi.post<MirrorRunResource>('/mirrors/acme/waiting/sync', {});
    expect(second.status).toBe(202);
    expect((await idleApi.post('/mirrors/acme/waiting/sync', {})).status).toBe(409);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const third = await idleApi.post<MirrorRunResource>('/mirrors/acme/waiting/sync', {});
    expect(third.status).toBe(202);
    expect(await runOf(idleApi, 'acme/waiting', second.body.id)).toMatchObject({
      state: 'failed',
      error: unstartedRunError(1),
    });
  });

  it('runs are only shown to those who administer the namespace, and only under their mirror', async () => {
    await createMirror(api, 'acme/private');
    const asked = await api.post<MirrorRunResource>('/mirrors/acme/private/sync', {});
    await finishedRun(api, 'acme/private', asked.body.id);
    const fixtures = await IdentityFixtures.of(slipway);
    const outsider = await fixtures.user('outsider');
    const asOutsider = ApiCaller.as(slipway, basic(outsider.username, outsider.password));
    expect((await asOutsider.post('/mirrors/acme/private/sync', {})).status).toBe(404);
    expect((await asOutsider.get(`/mirrors/acme/private/runs/${asked.body.id}`)).status).toBe(404);
    expect((await asOutsider.get('/mirrors/acme/private/runs')).status).toBe(404);
    await createMirror(api, 'acme/other');
    expect((await api.get(`/mirrors/acme/other/runs/${asked.body.id}`)).status).toBe(404);
  });
});
