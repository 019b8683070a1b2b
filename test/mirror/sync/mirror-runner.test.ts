import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  abandonedRunError,
  MirrorBusyError,
  MirrorRunner,
  shutdownRunError,
  type MirrorRunDetails,
} from '../../../src/mirror/sync/mirror-runner.ts';
import { mirrorSettingsSchema, type MirrorSettingsInput } from '../../../src/mirror/sync/mirror-settings.ts';
import { startSecuredSlipway } from '../../helpers/auth.ts';
import type { CountingProxy } from '../../helpers/counting-proxy.ts';
import { startDistribution } from '../../helpers/distribution.ts';
import { startProxiedUpstream, type ProxiedUpstream } from '../../helpers/proxied-upstream.ts';
import { IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';
import { waitFor } from '../../helpers/tools.ts';

/**
 * Mirror runs against a Distribution upstream on loopback (through a proxy that can hold blob bodies),
 * into a gateway on PostgreSQL, with mirrors created through the mirror store. Each test has its own
 * mirror.
 */
describe('mirror runner', () => {
  const versions = ['1.0', '1.1', '1.2', '1.3'];
  let upstream: ProxiedUpstream;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let runner: MirrorRunner;

  beforeAll(async () => {
    upstream = await startProxiedUpstream();
    ({ counter } = upstream);
    const { pusher } = upstream;
    for (const version of versions) {
      await pusher.pushImage('team/app', version, { layers: [randomBytes(2048)] });
      await pusher.pushImage('team/slow', version, { layers: [randomBytes(64 * 1024)] });
    }
    slipway = await startSecuredSlipway({ database: 'postgres' });
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.robot('acme', 'mirror');
    const { db, mirrors, store, outbox } = slipway.services;
    runner = new MirrorRunner({
      db,
      mirrors,
      local: store,
      outbox,
      leaseSeconds: 3,
      cancelPollMs: 50,
      retry: { attempts: 2, baseDelayMs: 10 },
    });
  });

  afterAll(async () => {
    await slipway?.stop();
    await upstream?.stop();
  });

  async function createMirror(
    repository: string,
    settings: Partial<MirrorSettingsInput> & { remote?: string; url?: string } = {},
  ): Promise<number> {
    const { remote = 'team/app', url = counter.url, ...rest } = settings;
    const [created] = await slipway.services.mirrors.create(
      [
        {
          repository,
          settings: mirrorSettingsSchema.parse({
            upstream: { url, repository: remote },
            robot: 'mirror',
            ...rest,
          }),
        },
      ],
      'root',
    );
    return created!.mirror.id;
  }

  async function mirrorEvents(repository: string): Promise<Array<Record<string, unknown>>> {
    const { rows } = await slipway.services.db.query<{ payload: Record<string, unknown> | string }>(
      `SELECT payload FROM events WHERE kind LIKE 'repo_mirror_sync_%' AND repository = $1 ORDER BY seq`,
      [repository],
    );
    return rows.map((row) => (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload));
  }

  const outcomes = (run: MirrorRunDetails) => Object.fromEntries(run.tags.map((t) => [t.tag, t.outcome]));

  it('records each tag, the totals and bytes, moves the mirror to success and sends both events', async () => {
    await createMirror('acme/app');
    const run = await runner.run('acme/app', { trigger: 'manual' });
    expect(run).toMatchObject({ repository: 'acme/app', trigger: 'manual', state: 'success', error: null });
    expect(run.finishedAt).toBeInstanceOf(Date);
    expect(outcomes(run)).toEqual(Object.fromEntries(versions.map((v) => [v, 'copied'])));
    expect(run.totals).toMatchObject({ copied: 4, unchanged: 0, failed: 0 });
    expect(run.bytesCopied).toBe(run.tags.reduce((sum, t) => sum + (t.bytes ?? 0), 0));
    expect(run.bytesCopied).toBeGreaterThan(4 * 2048);
    const mirror = await slipway.services.mirrors.get('acme/app');
    expect(mirror).toMatchObject({ state: 'success' });
    expect(mirror!.lastRunAt!.getTime()).toBe(run.startedAt.getTime());

    const events = await mirrorEvents('acme/app');
    expect(events.map((e) => e.kind)).toEqual(['repo_mirror_sync_started', 'repo_mirror_sync_success']);
    expect(events[1]).toMatchObject({
      mirror_id: 'acme/app',
      upstream: `${new URL(counter.url).host}/team/app`,
      tag_filter: ['*'],
      synced: 4,
      skipped: 0,
      failed: 0,
      failures: [],
    });

    // Nothing changed upstream; a dry run is recorded too, but sends nothing and leaves the mirror be.
    const again = await runner.run('acme/app', { trigger: 'schedule' });
    expect(again).toMatchObject({ state: 'success', totals: { copied: 0, unchanged: 4 }, bytesCopied: 0 });
    const dry = await runner.run('acme/app', { trigger: 'manual', dryRun: true });
    expect(dry).toMatchObject({ state: 'success', dryRun: true, totals: { unchanged: 4 } });
    expect((await mirrorEvents('acme/app')).map((e) => e.kind)).toEqual([
      'repo_mirror_sync_started',
      'repo_mirror_sync_success',
      'repo_mirror_sync_started',
      'repo_mirror_sync_success',
    ]);
    expect((await slipway.services.mirrors.get('acme/app'))!.lastRunAt!.getTime()).toBe(
      again.startedAt.getTime(),
    );
    expect((await runner.history('acme/app', 10)).map((r) => r.id)).toEqual([dry.id, again.id, run.id]);
    const [latest] = await runner.history('acme/app', 1);
    expect(latest).toMatchObject({ id: dry.id, dryRun: true });
    expect(latest).not.toHaveProperty('tags');
  });

  it('refuses a second run of a mirror while the first holds its lease', async () => {
    await createMirror('acme/busy');
    const [first, second] = await Promise.allSettled([
      runner.run('acme/busy', { trigger: 'manual' }),
      runner.run('acme/busy', { trigger: 'schedule' }),
    ]);
    const done = [first, second].filter((r) => r.status === 'fulfilled');
    const refused = [first, second].filter((r) => r.status === 'rejected');
    expect(done).toHaveLength(1);
    expect(refused).toHaveLength(1);
    const error = refused[0]!.reason as MirrorBusyError;
    expect(error).toBeInstanceOf(MirrorBusyError);
    expect(error.code).toBe('SLW_ERR_CONFLICT');
    expect(error.runId).toBe(done[0]!.value.id);
    expect(await runner.history('acme/busy')).toHaveLength(1);
  });

  it('takes over from a run whose worker stopped renewing its lease, marking that run failed', async () => {
    const mirrorId = await createMirror('acme/dead');
    const { db } = slipway.services;
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO mirror_runs (mirror_id, trigger, lease_owner, lease_expires_at, started_at)
       VALUES ($1, 'schedule', 'a worker that died', now() - interval '1 minute', now() - interval '5 minutes')
       RETURNING id`,
      [mirrorId],
    );
    const deadId = Number(rows[0]!.id);
    await db.query(
      `INSERT INTO mirror_run_tags (run_id, tag, outcome, reason) VALUES ($1, '1.0', 'failed', 'connection reset')`,
      [deadId],
    );
    await db.query(`UPDATE mirrors SET state = 'syncing' WHERE id = $1`, [mirrorId]);

    const run = await runner.run('acme/dead', { trigger: 'schedule' });
    expect(run.state).toBe('success');
    const dead = await runner.runDetails(deadId);
    expect(dead).toMatchObject({
      state: 'failed',
      error: abandonedRunError,
      totals: { failed: 1, copied: 0 },
      tags: [{ tag: '1.0', outcome: 'failed', reason: 'connection reset' }],
    });
    expect(dead!.finishedAt).toBeInstanceOf(Date);
    expect(await slipway.services.mirrors.get('acme/dead')).toMatchObject({ state: 'success' });
    const events = await mirrorEvents('acme/dead');
    expect(events.map((e) => e.kind)).toEqual([
      'repo_mirror_sync_failed',
      'repo_mirror_sync_started',
      'repo_mirror_sync_success',
    ]);
    expect(events[0]).toMatchObject({ failed: 1, failures: [{ tag: '1.0', error: 'connection reset' }] });
    expect(await runner.runDetails(deadId + 1_000_000)).toBeNull();
  });

  it('cancels a run under way: the copy in flight is aborted and the run ends cancelled', async () => {
    await createMirror('acme/slow', { remote: 'team/slow', concurrency: 1 });
    const release = upstream.hold(
      (request) => request.method === 'GET' && request.url.includes('/team/slow/blobs/'),
      1024,
    );
    try {
      const running = runner.run('acme/slow', { trigger: 'manual' });
      const runId = await waitFor('the run to copy a blob', async () => {
        const [latest] = await runner.history('acme/slow', 1);
        const copying = counter.count((r) => r.method === 'GET' && r.url.includes('/team/slow/blobs/')) > 0;
        return latest?.state === 'syncing' && copying ? latest.id : undefined;
      });
      // Held up, the run keeps renewing its lease (every third of the 3 s it lasts).
      const leaseOf = async () =>
        (
          await slipway.services.db.query<{ expires: Date }>(
            'SELECT lease_expires_at AS expires FROM mirror_runs WHERE id = $1',
            [runId],
          )
        ).rows[0]!.expires.getTime();
      const firstLease = await leaseOf();
      await waitFor(
        'the lease to be renewed',
        async () => ((await leaseOf()) > firstLease ? true : undefined),
        {
          timeoutMs: 5_000,
        },
      );
      expect(await runner.cancel('acme/slow')).toBe(runId);
      const run = await running;
      expect(run).toMatchObject({ id: runId, state: 'cancelled', cancelRequested: true, error: null });
      // One tag at a time: the one whose blob was held, and no other started.
      expect(run.tags).toEqual([
        expect.objectContaining({
          outcome: 'failed',
          reason: 'cancelled before the copy finished',
        }),
      ]);
    } finally {
      release();
    }
    expect(await slipway.services.mirrors.get('acme/slow')).toMatchObject({ state: 'cancelled' });
    expect(await runner.cancel('acme/slow')).toBeNull();
    const events = await mirrorEvents('acme/slow');
    expect(events.map((e) => e.kind)).toEqual(['repo_mirror_sync_started', 'repo_mirror_sync_failed']);
    expect(events[1]!.message).toContain('cancelled');
  });

  it('a run stopped because its worker shuts down ends failed, saying so, with its progress kept', async () => {
    await createMirror('acme/shutdown', { remote: 'team/slow', concurrency: 1 });
    const release = upstream.hold(
      (request) => request.method === 'GET' && request.url.includes('/team/slow/blobs/'),
      1024,
    );
    try {
      const running = runner.run('acme/shutdown', { trigger: 'schedule' });
      await waitFor('the run to copy a blob', async () => {
        const [latest] = await runner.history('acme/shutdown', 1);
        return latest?.state === 'syncing' ? true : undefined;
      });
      runner.stopRuns();
      const run = await running;
      expect(run).toMatchObject({ state: 'failed', error: shutdownRunError, cancelRequested: false });
    } finally {
      release();
    }
    expect(await slipway.services.mirrors.get('acme/shutdown')).toMatchObject({ state: 'failed' });
    const events = await mirrorEvents('acme/shutdown');
    expect(events.map((e) => e.kind)).toEqual(['repo_mirror_sync_started', 'repo_mirror_sync_failed']);
  });

  it('ends failed, with the error and a repo_mirror_sync_failed event, when the upstream is down', async () => {
    const stopped = await startDistribution();
    await stopped.stop();
    await createMirror('acme/down', { url: stopped.url });
    const run = await runner.run('acme/down', { trigger: 'schedule' });
    expect(run.state).toBe('failed');
    expect(run.error).toBeTruthy();
    expect(run.tags).toEqual([]);
    expect(await slipway.services.mirrors.get('acme/down')).toMatchObject({ state: 'failed' });
    const events = await mirrorEvents('acme/down');
    expect(events.map((e) => e.kind)).toEqual(['repo_mirror_sync_started', 'repo_mirror_sync_failed']);
    expect(events[1]).toMatchObject({ synced: 0, failed: 0 });
    expect(events[1]!.message).toContain(run.error);
  });
});
