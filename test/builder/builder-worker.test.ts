import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBuildControl } from '../../src/builder/builder-http-control.ts';
import { liveBuilders } from '../../src/builder/builder-presence.ts';
import { BuilderWorker } from '../../src/builder/builder-worker.ts';
import type { BuildService } from '../../src/builder/build-service.ts';
import type { Build, BuildStore } from '../../src/builder/build-store.ts';
import { revisionLabel } from '../../src/builder/executors/index.ts';
import type { BuildLogEntry } from '../../src/builder/logs/entry.ts';
import type { Digest } from '../../src/registry/digest.ts';
import { adminPassword, adminUser, startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { waitFor } from '../helpers/tools.ts';
import { shellBaseContext, workspaceBuildah } from './executor-fixtures.ts';
import {
  buildahBuilderArgs,
  inspectAsAdmin,
  killProcessesWithArgument,
  processWithArgumentExists,
  spawnBuilder,
} from './fixtures.ts';
import { GitRepository } from './git-fixtures.ts';

const builderSecret = 'builder-secret-0123456789abcdef0123456789';

/*
 * A BuilderWorker in this process talking to a Slipway under test over the builder protocol, building
 * with buildah (chroot, vfs) from a local bare git repository and pushing back to that Slipway.
 */
describe('BuilderWorker with buildah, git and a Slipway under test', () => {
  let workspace: ContainersWorkspace;
  let slipway: TestSlipway;
  let gitDir: string;
  let repository: GitRepository;
  let control: HttpBuildControl;
  let worker: BuilderWorker;
  let shellBase: string;
  let buildService: BuildService;
  let builds: BuildStore;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-builder-worker-');
    slipway = await startSecuredSlipway({ config: { builds: { builderSecret, claim: 6 } } });
    ({ buildService, builds } = slipway.services);
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
    gitDir = await mkdtemp(join(tmpdir(), 'slipway-builder-git-'));
    repository = await GitRepository.create(gitDir, 'app');

    const executor = workspaceBuildah(workspace);
    // A base image with a shell, in the build's own repository: the build token reaches nothing else.
    const base = await shellBaseContext(workspace);
    shellBase = `${slipway.host}/acme/app:base`;
    await executor.build(
      {
        contextDir: base,
        source: { revision: 'base', url: 'https://example.com/base.git' },
        destinations: [shellBase],
        credentials: { username: adminUser, token: adminPassword },
        tlsVerify: false,
      },
      { onLine: () => {} },
    );

    control = new HttpBuildControl({ gateway: slipway.url, secret: builderSecret });
    await mkdir(workspace.path('checkouts'));
    worker = new BuilderWorker({
      name: 'test-builder',
      control,
      redis: slipway.services.redis,
      executor,
      executorName: 'buildah',
      concurrency: 2,
      logger: pino({ level: 'silent' }),
      workDir: workspace.path('checkouts'),
    });
    await worker.start();
  });
  afterAll(async () => {
    await worker?.stop();
    await control?.close();
    await slipway?.stop();
    await workspace?.remove();
    if (gitDir) await rm(gitDir, { recursive: true, force: true });
  });

  /** The build once it ended and its log was archived (which the gateway does right after). */
  const ended = (id: string, timeoutMs = 90_000): Promise<Build> =>
    waitFor(
      `build ${id} to end`,
      async () => {
        const build = await builds.get(id);
        return build?.logDigest ? build : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  const eventsOf = async (id: string) =>
    (
      await slipway.services.db.query<{ kind: string; payload: Record<string, unknown> }>(
        `SELECT kind, payload FROM events WHERE payload->>'build_id' = $1 ORDER BY seq`,
        [id],
      )
    ).rows;
  const archivedLog = async (build: Build): Promise<BuildLogEntry[]> => {
    const entries: BuildLogEntry[] = [];
    for await (const entry of slipway.services.buildLogs.archive.readArchived(build.logDigest as Digest)) {
      entries.push(entry);
    }
    return entries;
  };
  const inspect = (reference: string) => inspectAsAdmin(workspace, reference);

  it('builds the commit, pushes every tag, and records the result, the log and the events', async () => {
    const commit = await repository.commit({
      Dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\n',
      'hello.txt': 'hello\n',
    });
    await repository.commit({ 'hello.txt': 'a later commit that must not be built\n' });
    const queued = await buildService.manual(
      { repository: 'acme/app', cloneUrl: repository.bare, ref: 'main', commit, tags: ['v1', 'latest'] },
      null,
    );
    const build = await ended(queued.id);

    expect(build.phase, build.error ?? '').toBe('complete');
    expect(build.builder).toBe('test-builder');
    expect(build.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(build.imageBytes).toBeGreaterThan(0);
    expect(Object.keys(build.phaseMs).sort()).toEqual(['building', 'cloning', 'pushing']);
    for (const tag of ['v1', 'latest']) {
      const image = await inspect(`${slipway.host}/acme/app:${tag}`);
      expect(image.Digest).toBe(build.digest);
      expect(image.Labels[revisionLabel]).toBe(commit);
    }

    expect(build.logDigest).toMatch(/^sha256:/);
    const log = await archivedLog(build);
    const phases = log.filter((entry) => entry.type === 'phase').map((entry) => entry.phase);
    expect(phases).toEqual(['cloning', 'building', 'pushing']);
    expect(log.at(-1)).toMatchObject({ type: 'end', phase: 'complete' });
    const texts = log.flatMap((entry) => (entry.type === 'line' ? [entry.text] : []));
    expect(texts).toContain(`Checked out ${commit} (refs/heads/main)`);
    expect(texts.some((text) => text.includes('COPY hello.txt'))).toBe(true);

    const events = await eventsOf(build.id);
    expect(events.map((event) => event.kind)).toEqual(['build_queued', 'build_start', 'build_success']);
    expect(events[2]!.payload.digest).toBe(build.digest);
  });

  it('builds a ref, recording the commit it resolved to', async () => {
    const commit = await repository.commit(
      { Dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\n', 'hello.txt': 'from a branch\n' },
      'feature',
    );
    const queued = await buildService.manual(
      { repository: 'acme/app', cloneUrl: repository.bare, ref: 'feature', tags: ['feature'] },
      null,
    );
    const build = await ended(queued.id);
    expect(build.phase, build.error ?? '').toBe('complete');
    expect(build.commit).toBe(commit);
    expect((await inspect(`${slipway.host}/acme/app:feature`)).Labels[revisionLabel]).toBe(commit);
  });

  it('ends a build whose Dockerfile fails as error, with the output in the message', async () => {
    const commit = await repository.commit({
      Dockerfile: `FROM ${shellBase}\nRUN echo "about to fail" && exit 3\n`,
    });
    const queued = await buildService.manual(
      { repository: 'acme/app', cloneUrl: repository.bare, commit, tags: ['broken'] },
      null,
    );
    const build = await ended(queued.id);
    expect(build.phase).toBe('error');
    expect(build.error).toMatch(/build failed: exit status 3/);
    expect(build.error).toContain('about to fail');
    const events = await eventsOf(build.id);
    expect(events.at(-1)).toMatchObject({ kind: 'build_failure' });
    expect((await archivedLog(build)).at(-1)).toMatchObject({ type: 'end', phase: 'error' });
  });

  it('stops a cancelled build promptly, RUN step and all', async () => {
    const marker = '31.7243';
    const commit = await repository.commit({
      Dockerfile: `FROM ${shellBase}\nRUN echo "slow step started" && sleep ${marker}\n`,
    });
    const queued = await buildService.manual(
      { repository: 'acme/app', cloneUrl: repository.bare, commit, tags: ['slow'] },
      null,
    );
    await waitFor(
      'the slow step to run',
      async () => ((await processWithArgumentExists(marker)) ? true : undefined),
      {
        timeoutMs: 90_000,
        intervalMs: 200,
      },
    );
    expect(worker.running).toContain(queued.id);
    const cancelledAt = Date.now();
    await buildService.cancel(queued.id);
    const build = await ended(queued.id, 20_000);
    // A heartbeat (every 2 s here) brings the cancellation; buildah then gets its grace of 2 s.
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);
    expect(build.phase).toBe('cancelled');
    expect(await processWithArgumentExists(marker)).toBe(false);
    expect((await eventsOf(build.id)).at(-1)).toMatchObject({ kind: 'build_cancelled' });
    expect((await archivedLog(build)).at(-1)).toMatchObject({ type: 'end', phase: 'cancelled' });
    // The checkout is gone with the build.
    expect(await readdir(workspace.path('checkouts'))).toEqual([]);
  });

  it('announces itself in Redis while it runs', async () => {
    const redis = slipway.services.redis.connect();
    try {
      const builders = await liveBuilders(redis, slipway.services.buildLogs.keyPrefix);
      expect(builders).toEqual([
        expect.objectContaining({ name: 'test-builder', concurrency: 2, executor: 'buildah' }),
      ]);
    } finally {
      redis.disconnect();
    }
  });

  it('refuses builders without the secret, and a claim of a build that is not waiting', async () => {
    const hello = await fetch(`${slipway.url}/api/v1/builder/hello`, {
      headers: { authorization: 'Bearer not-the-secret' },
    });
    expect(hello.status).toBe(401);
    expect(await control.hello()).toEqual({
      queuePrefix: slipway.services.buildLogs.keyPrefix,
      logKeyPrefix: slipway.services.buildLogs.keyPrefix,
      registry: slipway.host,
      registryTls: false,
    });
    const [done] = await builds.list('acme/app', { limit: 1 });
    expect(await control.claim(done!.id, 'someone-else')).toBeNull();
    expect(await control.heartbeat(done!.id, 'someone-else')).toBeNull();
  });
  it('on stop, ends the builds it runs internal_error and takes no more', async () => {
    const marker = '32.5518';
    const commit = await repository.commit({
      Dockerfile: `FROM ${shellBase}\nRUN echo "slow step started" && sleep ${marker}\n`,
    });
    const queued = await buildService.manual(
      { repository: 'acme/app', cloneUrl: repository.bare, commit, tags: ['stopping'] },
      null,
    );
    await waitFor(
      'the slow step to run',
      async () => ((await processWithArgumentExists(marker)) ? true : undefined),
      { timeoutMs: 90_000, intervalMs: 200 },
    );
    await worker.stop();
    const build = (await builds.get(queued.id))!;
    expect(build.phase).toBe('internal_error');
    expect(build.error).toBe('builder test-builder shut down during building; start the build again');
    expect(await processWithArgumentExists(marker)).toBe(false);
  });

  // Last: the builder of this process stops, so that the `slipway builder` process takes the job.
  it('ends internal_error the build of a `slipway builder` process killed mid-build, once its claim runs out', async () => {
    await worker.stop();
    const marker = '33.9127';
    const commit = await repository.commit({
      Dockerfile: `FROM ${shellBase}\nRUN echo "slow step started" && sleep ${marker}\n`,
    });
    const builder = spawnBuilder(
      workspace,
      { gateway: slipway.url, name: 'doomed-builder', secret: builderSecret },
      [...buildahBuilderArgs(workspace, 'process'), '--work-dir', workspace.path('process-checkouts')],
    );
    try {
      const queued = await buildService.manual(
        { repository: 'acme/app', cloneUrl: repository.bare, commit, tags: ['doomed'] },
        null,
      );
      await waitFor(
        'the slow step to run in the builder process',
        async () => ((await processWithArgumentExists(marker)) ? true : undefined),
        { timeoutMs: 90_000, intervalMs: 200 },
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${builder.output()}`);
      });
      expect((await builds.get(queued.id))!.builder).toBe('doomed-builder');
      await builder.kill();
      // Nothing is swept while the claim (6 s) holds.
      expect(await buildService.sweep()).toBe(0);
      const build = await waitFor(
        'the sweep to end the build',
        async () => {
          await buildService.sweep();
          const current = await builds.get(queued.id);
          return current?.phase === 'internal_error' ? current : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 500 },
      );
      expect(build.error).toMatch(/builder doomed-builder stopped answering during building/);
      expect((await eventsOf(build.id)).at(-1)).toMatchObject({ kind: 'build_failure' });
    } finally {
      await builder.kill();
      // The builder's buildah and RUN step outlive a SIGKILL of the builder itself.
      await killProcessesWithArgument(marker, workspace.path('process', 'root'));
    }
  });
});
