import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import type { BuildLogEntry } from '../../src/builder/logs/entry.ts';
import { BuildLogWriter } from '../../src/builder/logs/writer.ts';
import type { Digest } from '../../src/registry/digest.ts';
import type { PushEvent } from '../../src/triggers/push-event.ts';
import { triggerSettingsSchema, type TriggerSettingsInput } from '../../src/triggers/trigger-settings.ts';
import type { Trigger } from '../../src/triggers/trigger-store.ts';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';

const commit = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const otherCommit = 'ffeeddccbbaa99887766554433221100ffeeddcc';

function pushOf(ref: string, sha = commit, overrides: Partial<PushEvent> = {}): PushEvent {
  const kind = ref.startsWith('refs/tags/') ? 'tag' : 'branch';
  return {
    provider: 'github',
    ref: { kind, name: ref.replace(/^refs\/(heads|tags)\//, ''), full: ref },
    commit: sha,
    deleted: false,
    cloneUrl: { url: 'https://git.example.com/acme/api.git' },
    repository: 'acme/api',
    defaultBranch: 'main',
    author: { name: 'Ada', username: 'ada' },
    message: 'Add the thing',
    ...overrides,
  };
}

/**
 * The build service on PostgreSQL, without builders: what a push or a request becomes, how builders'
 * claims and reports move a build, and how builds nobody finishes end.
 */
describe('build service', () => {
  let slipway: TestSlipway;
  let redis: Redis;

  beforeAll(async () => {
    slipway = await startSecuredSlipway({
      database: 'postgres',
      config: { builds: { claim: 1, queueTimeout: 2, timeout: 3600 } },
    });
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    redis = slipway.services.redis.connect();
  });

  afterAll(async () => {
    redis?.disconnect();
    await slipway?.stop();
  });

  async function trigger(repository: string, settings: Partial<TriggerSettingsInput> = {}): Promise<Trigger> {
    const { trigger } = await slipway.services.triggers.create(
      repository,
      triggerSettingsSchema.parse({
        provider: 'github',
        cloneUrl: 'https://git.example.com/acme/api.git',
        ...settings,
      }),
      'admin',
    );
    return trigger;
  }

  async function eventsOf(buildId: string): Promise<Array<Record<string, unknown>>> {
    const { rows } = await slipway.services.db.query<{ payload: Record<string, unknown> | string }>(
      `SELECT payload FROM events WHERE kind LIKE 'build_%' AND payload->>'build_id' = $1 ORDER BY seq`,
      [buildId],
    );
    return rows.map((row) => (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload));
  }

  /** Follows a build's log from now on; its entries and how long after `since()` the end came. */
  function followLog(buildId: string) {
    const startedAt = { at: 0 };
    const done = (async () => {
      const entries: BuildLogEntry[] = [];
      for await (const entry of slipway.services.buildLogs.reader.follow(buildId)) entries.push(entry);
      return { entries, endedAfterMs: performance.now() - startedAt.at };
    })();
    return { since: () => (startedAt.at = performance.now()), done };
  }

  const describeEntry = (entry: BuildLogEntry) =>
    entry.type === 'line'
      ? `${entry.stream}:${entry.text}`
      : `${entry.type}:${'phase' in entry ? entry.phase : ''}`;

  async function archivedLog(buildId: string): Promise<string[]> {
    const digest = (await slipway.services.builds.get(buildId))!.logDigest;
    expect(digest).not.toBeNull();
    const entries: string[] = [];
    for await (const entry of slipway.services.buildLogs.archive.readArchived(digest as Digest)) {
      entries.push(describeEntry(entry));
    }
    return entries;
  }

  const waitForFollower = () => new Promise((resolve) => setTimeout(resolve, 200));

  function queued(outcome: Awaited<ReturnType<typeof slipway.services.buildService.fromPush>>): Build {
    if ('skipped' in outcome) throw new Error(`skipped: ${outcome.skipped}`);
    return outcome.build;
  }

  it('a push becomes a waiting build with the templated tags, and build_queued with the push', async () => {
    const t = await trigger('acme/api', { tagTemplates: ['${branch}', '${short_sha}', 'build-${date}'] });
    const build = queued(await slipway.services.buildService.fromPush(t, pushOf('refs/heads/main')));
    const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    expect(build).toMatchObject({
      repository: 'acme/api',
      triggerId: t.id,
      triggerKind: 'github',
      phase: 'waiting',
      ref: 'refs/heads/main',
      commit,
      tags: ['main', commit.slice(0, 7), `build-${today}`, 'latest'],
      dockerfile: 'Dockerfile',
      context: '.',
    });
    const [event] = await eventsOf(build.id);
    expect(event).toMatchObject({
      kind: 'build_queued',
      repository: 'acme/api',
      build_name: commit.slice(0, 7),
      trigger_kind: 'github',
      docker_tags: build.tags,
      log_url: `/api/v1/builds/${build.id}/logs`,
      trigger_metadata: {
        commit,
        ref: 'refs/heads/main',
        default_branch: 'main',
        commit_info: { message: 'Add the thing', author: { username: 'ada', name: 'Ada' } },
      },
    });
  });

  it('does not build the same commit twice at once for one trigger; another commit is built', async () => {
    const t = await trigger('acme/dedupe');
    const first = await slipway.services.buildService.fromPush(t, pushOf('refs/heads/main'));
    const again = await slipway.services.buildService.fromPush(t, pushOf('refs/tags/v1.0.0'));
    const other = await slipway.services.buildService.fromPush(t, pushOf('refs/heads/main', otherCommit));
    expect(first).toMatchObject({ created: true });
    expect(again).toMatchObject({ created: false, build: { id: queued(first).id } });
    expect(other).toMatchObject({ created: true });
    expect(await slipway.services.builds.list('acme/dedupe')).toHaveLength(2);
  });

  it('skips, saying why: a ref outside the filter, a deleted ref, a disabled trigger', async () => {
    const t = await trigger('acme/skips', { refFilter: 'heads/main|tags/v.*' });
    const { buildService, triggers } = slipway.services;
    expect(await buildService.fromPush(t, pushOf('refs/heads/feature/x'))).toEqual({
      skipped: "refs/heads/feature/x does not match the trigger's ref filter heads/main|tags/v.*",
    });
    expect(
      await buildService.fromPush(t, pushOf('refs/heads/main', commit, { deleted: true })),
    ).toMatchObject({
      skipped: expect.stringContaining('was deleted'),
    });
    const disabled = (await triggers.update(t.id, { enabled: false }, 'alice'))!;
    expect(await buildService.fromPush(disabled, pushOf('refs/heads/main'))).toEqual({
      skipped: 'the trigger is disabled: disabled by alice',
    });
    expect(await slipway.services.builds.list('acme/skips')).toEqual([]);
  });

  it('moves a claimed build through its phases to complete; only the claiming builder may report', async () => {
    const t = await trigger('acme/phases');
    const build = queued(await slipway.services.buildService.fromPush(t, pushOf('refs/heads/main')));
    const { buildService } = slipway.services;
    const assignment = (await buildService.claim(build.id, 'builder-1'))!;
    expect(assignment.build.phase).toBe('cloning');
    expect(assignment.destinations).toEqual(
      build.tags.map((tag) => `${assignment.registry}/acme/phases:${tag}`),
    );
    expect(assignment.push.username).toBe(`build@${build.id}`);
    expect(await buildService.claim(build.id, 'builder-2')).toBeNull();
    expect(await buildService.phase(build.id, 'builder-2', 'building', {})).toBe(false);
    expect(await buildService.phase(build.id, 'builder-1', 'building', { cloning: 120 })).toBe(true);
    expect(await buildService.heartbeat(build.id, 'builder-1')).toEqual({ cancel: false });
    const digest = `sha256:${'ab'.repeat(32)}`;
    const done = await buildService.finish(build.id, 'builder-1', {
      phase: 'complete',
      digest,
      imageBytes: 1234,
      phaseMs: { building: 900, pushing: 80 },
    });
    expect(done).toMatchObject({
      phase: 'complete',
      digest,
      imageBytes: 1234,
      phaseMs: { cloning: 120, building: 900, pushing: 80 },
    });
    expect(done!.finishedAt).toBeInstanceOf(Date);
    expect(await buildService.finish(build.id, 'builder-1', { phase: 'error', error: 'late' })).toBeNull();
    expect((await eventsOf(build.id)).map((e) => e.kind)).toEqual([
      'build_queued',
      'build_start',
      'build_success',
    ]);
    expect((await eventsOf(build.id))[2]).toMatchObject({ digest });
  });

  it('cancels: a waiting build at once, a running one through its heartbeat; an ended one is 409', async () => {
    const t = await trigger('acme/cancel');
    const { buildService } = slipway.services;
    const waiting = queued(await buildService.fromPush(t, pushOf('refs/heads/main')));
    expect(await buildService.cancel(waiting.id)).toMatchObject({
      phase: 'cancelled',
      cancelRequested: true,
    });
    expect(await buildService.claim(waiting.id, 'builder-1')).toBeNull();

    const running = queued(await buildService.fromPush(t, pushOf('refs/heads/main', otherCommit)));
    await buildService.claim(running.id, 'builder-1');
    expect(await buildService.cancel(running.id)).toMatchObject({ phase: 'cloning', cancelRequested: true });
    expect(await buildService.heartbeat(running.id, 'builder-1')).toEqual({ cancel: true });
    await buildService.finish(running.id, 'builder-1', { phase: 'cancelled' });
    await expect(buildService.cancel(running.id)).rejects.toMatchObject({ status: 409 });
    expect((await eventsOf(waiting.id)).map((e) => e.kind)).toEqual(['build_queued', 'build_cancelled']);
  });

  it('ends the log of a waiting build it cancels, so a follower stops at once; the archive has it', async () => {
    const t = await trigger('acme/cancel-log');
    const { buildService } = slipway.services;
    const waiting = queued(await buildService.fromPush(t, pushOf('refs/heads/main')));
    const follower = followLog(waiting.id);
    await waitForFollower();
    follower.since();
    await buildService.cancel(waiting.id);
    const { entries, endedAfterMs } = await follower.done;
    const expected = [
      'stderr:the build was cancelled before a builder took it',
      'phase:cancelled',
      'end:cancelled',
    ];
    expect(entries.map(describeEntry)).toEqual(expected);
    expect(endedAfterMs).toBeLessThan(2000);
    expect(await archivedLog(waiting.id)).toEqual(expected);
  });

  it('ends builds nobody will finish: a vanished builder, and a build no builder took', async () => {
    const t = await trigger('acme/sweep');
    const { buildService, builds } = slipway.services;
    const vanished = queued(await buildService.fromPush(t, pushOf('refs/heads/main')));
    await buildService.claim(vanished.id, 'builder-gone');
    const unclaimed = queued(await buildService.fromPush(t, pushOf('refs/heads/main', otherCommit)));
    await new Promise((resolve) => setTimeout(resolve, 2200));
    expect(await buildService.sweep()).toBeGreaterThanOrEqual(2);
    expect(await builds.get(vanished.id)).toMatchObject({
      phase: 'internal_error',
      error: 'builder builder-gone stopped answering during cloning; start the build again',
    });
    expect(await builds.get(unclaimed.id)).toMatchObject({
      phase: 'internal_error',
      error: expect.stringContaining('no builder took the build within 2s'),
    });
    expect((await eventsOf(vanished.id)).at(-1)).toMatchObject({ kind: 'build_failure' });
  });

  it('ends the log of a build whose builder vanished with the reason; two sweeps write it once', async () => {
    const t = await trigger('acme/sweep-log');
    const { buildService, buildLogs } = slipway.services;
    const vanished = queued(await buildService.fromPush(t, pushOf('refs/heads/main')));
    await buildService.claim(vanished.id, 'builder-gone');
    const log = new BuildLogWriter({ redis: redis, keyPrefix: buildLogs.keyPrefix, buildId: vanished.id });
    log.phase('cloning');
    log.line('stdout', 'Cloning into source...');
    await log.flush();
    const follower = followLog(vanished.id);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the claim (1 s) expires
    follower.since();
    await Promise.all([buildService.sweep(), buildService.sweep()]);
    const { entries, endedAfterMs } = await follower.done;
    const expected = [
      'phase:cloning',
      'stdout:Cloning into source...',
      'stderr:builder builder-gone stopped answering during cloning; start the build again',
      'phase:internal_error',
      'end:internal_error',
    ];
    expect(entries.map(describeEntry)).toEqual(expected);
    expect(endedAfterMs).toBeLessThan(2000);
    expect(await archivedLog(vanished.id)).toEqual(expected);
  });

  it('leaves one end in the log of a build its builder ended, also when it vanished before reporting', async () => {
    const t = await trigger('acme/builder-end');
    const { buildService, buildLogs } = slipway.services;
    const endLog = async (buildId: string, phase: string) => {
      const log = new BuildLogWriter({ redis: redis, keyPrefix: buildLogs.keyPrefix, buildId });
      log.phase('building');
      await log.end(phase);
    };
    const finished = queued(await buildService.fromPush(t, pushOf('refs/heads/main')));
    await buildService.claim(finished.id, 'builder-1');
    await endLog(finished.id, 'complete');
    await buildService.finish(finished.id, 'builder-1', { phase: 'complete' });
    expect(await archivedLog(finished.id)).toEqual(['phase:building', 'end:complete']);

    const unreported = queued(await buildService.fromPush(t, pushOf('refs/heads/main', otherCommit)));
    await buildService.claim(unreported.id, 'builder-gone');
    await endLog(unreported.id, 'error');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await buildService.sweep();
    expect(await slipway.services.builds.get(unreported.id)).toMatchObject({ phase: 'internal_error' });
    expect(await archivedLog(unreported.id)).toEqual(['phase:building', 'end:error']);
  });

  it('a trigger whose builds keep failing disables itself, saying why; a success resets the count', async () => {
    const t = await trigger('acme/flaky');
    const { buildService, triggers } = slipway.services;
    const fail = async (n: number) => {
      const sha = n.toString(16).padStart(40, '0');
      const build = queued(await buildService.fromPush(t, pushOf('refs/heads/main', sha)));
      await buildService.claim(build.id, 'builder-1');
      await buildService.finish(build.id, 'builder-1', { phase: 'error', error: `step ${n} failed` });
    };
    for (let n = 1; n <= 4; n++) await fail(n);
    expect(await triggers.get(t.id)).toMatchObject({ enabled: true, failuresInARow: 4 });
    await fail(5);
    expect(await triggers.get(t.id)).toMatchObject({
      enabled: false,
      failuresInARow: 5,
      disabledReason: 'disabled after 5 failed builds in a row; the last: step 5 failed',
    });
    const again = await triggers.update(t.id, { enabled: true }, 'alice');
    expect(again).toMatchObject({ enabled: true, failuresInARow: 0, disabledReason: null });
  });

  it('a manual build of a ref names its tag after the ref; credentials are sealed and never shown', async () => {
    const t = await trigger('acme/manual', { credentials: { token: 'ghp_secret-token', username: 'bot' } });
    expect(t.credentials).toEqual({ kind: 'token', username: 'bot' });
    expect(JSON.stringify(t)).not.toContain('ghp_secret-token');
    const { rows } = await slipway.services.db.query<{ sealed: string }>(
      'SELECT clone_token_sealed AS sealed FROM build_triggers WHERE id = $1',
      [t.id],
    );
    expect(rows[0]!.sealed).not.toContain('ghp_secret-token');
    expect(await slipway.services.triggers.cloneSecrets(t.id)).toEqual({
      username: 'bot',
      token: 'ghp_secret-token',
    });

    const build = await slipway.services.buildService.manual(
      { repository: 'acme/manual', triggerId: t.id, ref: 'release/2.0' },
      'alice',
    );
    expect(build).toMatchObject({
      triggerKind: 'manual',
      ref: 'refs/heads/release/2.0',
      commit: null,
      tags: ['release-2.0'],
      requestedBy: 'alice',
    });
    await expect(
      slipway.services.buildService.manual(
        { repository: 'acme/other', triggerId: t.id, ref: 'main' },
        'alice',
      ),
    ).rejects.toMatchObject({ status: 404 });
  });
});
