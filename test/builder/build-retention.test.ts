import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import { scheduleBuildSweep } from '../../src/builder/builder-sweeper.ts';
import { BuildLogWriter } from '../../src/builder/logs/writer.ts';
import type { BuildResource } from '../../src/cli/resources.ts';
import type { Digest } from '../../src/registry/digest.ts';
import { ApiCaller } from '../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../helpers/auth.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';

type EndedBuild = Build & { logDigest: Digest };

const collectEverything = { untaggedGraceSeconds: 0, blobGraceSeconds: 0, uploadExpirySeconds: 3600 };

/**
 * Ended builds and their archived logs do not outlive their repository, and repositories keep only
 * the newest ended builds (`builds.retention`): the logs of builds that go are then garbage collected.
 * On PGlite and filesystem storage, without builders: the tests claim, log and finish builds themselves.
 */
describe('build retention', () => {
  let slipway: TestSlipway;
  let redis: Redis;
  let root: ApiCaller;

  beforeAll(async () => {
    slipway = await startSecuredSlipway({ config: { builds: { retention: { keep: 3, maxAge: '30d' } } } });
    redis = slipway.services.redis.connect();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    for (const repository of ['acme/doomed', 'acme/busy', 'acme/quiet', 'acme/periodic'])
      await fixtures.repository(repository);
  });

  afterAll(async () => {
    redis?.disconnect();
    await slipway?.stop();
  });

  const waitingBuild = (repository: string, ref: string) =>
    slipway.services.buildService.manual(
      { repository, cloneUrl: `https://git.example.com/${repository}.git`, ref },
      adminUser,
    );

  async function runningBuild(repository: string, ref: string): Promise<Build> {
    const build = await waitingBuild(repository, ref);
    return (await slipway.services.buildService.claim(build.id, 'builder-1'))!.build;
  }

  /** A build that ran, logged and completed: its log is archived to blob storage. */
  async function endedBuild(repository: string, ref: string): Promise<EndedBuild> {
    const build = await runningBuild(repository, ref);
    const writer = new BuildLogWriter({
      redis,
      keyPrefix: slipway.services.buildLogs.keyPrefix,
      buildId: build.id,
    });
    writer.line('stdout', `building ${repository} at ${ref} (${build.id})`);
    await writer.end('complete');
    const ended = await slipway.services.buildService.finish(build.id, 'builder-1', {
      phase: 'complete',
      digest: `sha256:${'ab'.repeat(32)}`,
    });
    expect(ended?.logDigest).toMatch(/^sha256:/);
    return ended as EndedBuild;
  }

  const logStored = (build: { logDigest: Digest }) =>
    slipway.services.driver.stat(build.logDigest).then(
      () => true,
      () => false,
    );

  const listed = async (repository: string) => {
    const answer = await root.get<{ builds: BuildResource[] }>(`/repositories/${repository}/builds`);
    expect(answer.status).toBe(200);
    return answer.body.builds.map((build) => build.id);
  };

  const gc = () => slipway.services.gc.run(collectEverything);

  it("garbage collection keeps builds' logs until their repository is deleted, then removes them", async () => {
    const builds = [await endedBuild('acme/doomed', 'main'), await endedBuild('acme/doomed', 'v1')];
    await gc();
    for (const build of builds) expect(await logStored(build)).toBe(true);
    expect((await root.get(`/builds/${builds[0]!.id}/logs`)).status).toBe(200);

    expect((await root.delete('/repositories/acme/doomed')).status).toBe(204);
    await gc();
    for (const build of builds) {
      expect(await logStored(build)).toBe(false);
      expect((await root.get(`/builds/${build.id}`)).status).toBe(404);
    }
  });

  it('deletes the oldest ended builds beyond the limit and those ended too long ago; their logs go with GC', async () => {
    // Queued first, so they would be the first to go were builds under way counted.
    const waiting = await waitingBuild('acme/busy', 'waiting');
    const running = await runningBuild('acme/busy', 'running');
    const ended: EndedBuild[] = [];
    for (let n = 1; n <= 5; n++) ended.push(await endedBuild('acme/busy', `release-${n}`));
    const [first, second, third, fourth, fifth] = ended as [
      EndedBuild,
      EndedBuild,
      EndedBuild,
      EndedBuild,
      EndedBuild,
    ];
    const quiet = [await endedBuild('acme/quiet', 'main'), await endedBuild('acme/quiet', 'v2')];
    await endedLongAgo(fourth.id, 40);
    await endedLongAgo(quiet[0]!.id, 10);

    expect(await slipway.services.buildService.applyRetention()).toBe(3);
    expect(await listed('acme/busy')).toEqual([fifth.id, third.id, running.id, waiting.id]);
    expect(await listed('acme/quiet')).toEqual([quiet[1]!.id, quiet[0]!.id]);
    expect((await root.get(`/builds/${first.id}`)).status).toBe(404);

    await gc();
    for (const gone of [first, second, fourth]) expect(await logStored(gone)).toBe(false);
    for (const kept of [third, fifth, ...quiet]) expect(await logStored(kept)).toBe(true);
    expect(await slipway.services.buildService.applyRetention()).toBe(0);
  });

  it('the build sweeper applies retention periodically', async () => {
    const builds: EndedBuild[] = [];
    for (let n = 1; n <= 4; n++) builds.push(await endedBuild('acme/periodic', `v${n}`));
    const quietLogger = { info: () => {}, warn: () => {}, error: () => {} };
    const stop = scheduleBuildSweep(slipway.services.buildService, quietLogger, { retentionMs: 50 });
    try {
      await expect.poll(() => listed('acme/periodic')).toHaveLength(3);
    } finally {
      stop();
    }
    expect(await listed('acme/periodic')).not.toContain(builds[0]!.id);
  });

  async function endedLongAgo(buildId: string, days: number): Promise<void> {
    await slipway.services.db.query(
      `UPDATE builds SET finished_at = now() - make_interval(days => $2) WHERE id = $1`,
      [buildId, days],
    );
  }
});
