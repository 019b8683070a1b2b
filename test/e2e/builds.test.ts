import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import { revisionLabel } from '../../src/builder/executors/index.ts';
import { buildLogKey } from '../../src/builder/logs/entry.ts';
import type { BuildLogEntryResource, BuildLogPageResource, BuildResource } from '../../src/cli/resources.ts';
import { readServerSentEvents, type ServerSentEvent } from '../../src/cli/server-sent-events.ts';
import { postReceiveHookScript } from '../../src/triggers/custom-git.ts';
import { triggerSettingsSchema } from '../../src/triggers/trigger-settings.ts';
import { webhookPath } from '../../src/gateway/webhooks/deliveries.ts';
import { ApiCaller } from '../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.ts';
import { startDistribution, type TestDistribution } from '../helpers/distribution.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool, waitFor } from '../helpers/tools.ts';
import {
  buildahBuilderArgs,
  inspectAsAdmin,
  processWithArgumentExists,
  spawnBuilder,
} from '../builder/fixtures.ts';
import { GitRepository } from '../builder/git-fixtures.ts';
import { publishBase, shellBaseLayout } from '../builder/shell-base.ts';
import type { SlipwayProcess } from '../helpers/worker-process.ts';

const builderSecret = 'e2e-builder-secret-0123456789abcdef01234';
const adminAuth = basic(adminUser, adminPassword);

/*
 * Builds from end to end with a `slipway builder` process (buildah, chroot, vfs) and a secured Slipway
 * that also caches an upstream registry (Debian's docker-registry behind a request-counting proxy) as
 * its `hub` namespace, which the builder uses as the pull mirror of docker.io. The base image with a
 * shell is made offline: public in Slipway as `acme/base:1`, upstream as `library/shell:1` and `:2`.
 */
describe('builds with a `slipway builder` process', () => {
  let workspace: ContainersWorkspace;
  let upstream: TestDistribution;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let api: ApiCaller;
  let gitDir: string;
  let sources: GitRepository;
  let builder: SlipwayProcess;
  /** The config and layer digests of the base image. */
  let baseBlobs: string[];

  beforeAll(async () => {
    requireTool('curl', 'curl');
    requireTool('openssl', 'openssl');
    requireTool('git', 'git');
    [workspace, upstream] = await Promise.all([
      ContainersWorkspace.create('slipway-e2e-builds-'),
      startDistribution(),
    ]);
    counter = await startCountingProxy(upstream.url);
    slipway = await startSecuredSlipway({
      config: {
        // Heartbeats every 2 s: a cancellation reaches the builder within that.
        builds: { builderSecret, claim: 6 },
        proxy: { upstreams: [{ name: 'hub', url: counter.url, pull: 'users' }] },
      },
    });
    api = ApiCaller.as(slipway, adminAuth);
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    for (const repository of ['acme/live', 'acme/cancelled', 'acme/cached', 'acme/mirrored']) {
      await fixtures.repository(repository);
    }

    const [publicBase, upstreamBase] = await Promise.all([
      shellBaseLayout(workspace, 'public'),
      shellBaseLayout(workspace, 'upstream'),
    ]);
    const upstreamHost = upstream.url.replace(/^http:\/\//, '');
    // Straight to the upstream, not through the counting proxy: it counts what Slipway asks for.
    for (const tag of ['1', '2']) {
      await workspace.skopeo([
        'copy',
        '--dest-tls-verify=false',
        upstreamBase,
        `docker://${upstreamHost}/library/shell:${tag}`,
      ]);
    }
    const manifest = JSON.parse(
      (
        await workspace.skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${upstreamHost}/library/shell:1`,
        ])
      ).stdout,
    ) as { config: { digest: string }; layers: { digest: string }[] };
    baseBlobs = [manifest.config.digest, ...manifest.layers.map((layer) => layer.digest)];
    await publishBase(workspace, slipway, fixtures, publicBase);

    gitDir = await mkdtemp(join(tmpdir(), 'slipway-e2e-builds-git-'));
    sources = await GitRepository.create(gitDir, 'sources');
    builder = spawnBuilder(workspace, { gateway: slipway.url, name: 'e2e-builder', secret: builderSecret }, [
      ...buildahBuilderArgs(workspace, 'builder'),
      '--work-dir',
      workspace.path('builder', 'checkouts'),
      '--pull-mirror',
      `docker.io=${slipway.host}/hub`,
    ]);
  });
  afterAll(async () => {
    await builder?.terminate();
    await slipway?.stop();
    await counter?.stop();
    await upstream?.stop();
    await workspace?.remove();
    if (gitDir) await rm(gitDir, { recursive: true, force: true });
  });

  const withBuilderOutput = (error: unknown): never => {
    throw new Error(`${(error as Error).message}\nbuilder output:\n${builder.output()}`);
  };

  /** Starts a build through the API, as the superuser; the build as answered. */
  async function startBuild(repository: string, body: Record<string, unknown>): Promise<BuildResource> {
    const started = await api.post<BuildResource>(`/repositories/${repository}/builds`, body);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    return started.body;
  }

  /** The build once it ended and its log was archived (which the gateway does right after). */
  const ended = (id: string): Promise<Build> =>
    waitFor(
      `build ${id} to end`,
      async () => {
        const build = await slipway.services.builds.get(id);
        return build?.logDigest ? build : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    ).catch(withBuilderOutput);

  const inspect = (reference: string) => inspectAsAdmin(workspace, reference);

  /** Opens the build's log as an EventSource would. */
  async function follow(id: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${slipway.url}/api/v1/builds/${id}/logs`, {
      headers: { Authorization: adminAuth, Accept: 'text/event-stream', ...headers },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    return readServerSentEvents(response.body!);
  }
  const allOf = async (events: AsyncGenerator<ServerSentEvent>) => {
    const all: ServerSentEvent[] = [];
    for await (const event of events) all.push(event);
    return all;
  };
  const phaseOf = async (id: string) => (await api.get<BuildResource>(`/builds/${id}`)).body.phase;

  /** How many times Slipway fetched a blob of the base image from the upstream. */
  const upstreamBlobFetches = (digest: string) =>
    counter.count((r) => r.method === 'GET' && r.url.split('?')[0] === `/v2/library/shell/blobs/${digest}`);

  it('builds the pushed commit and pushes it under the templated tags', async () => {
    const repository = await GitRepository.create(gitDir, 'inventory');
    const { trigger, webhookSecret } = await slipway.services.triggers.create(
      'acme/inventory',
      triggerSettingsSchema.parse({
        provider: 'custom',
        cloneUrl: `file://${repository.bare}`,
        tagTemplates: ['${branch}', 'git-${short_sha}'],
      }),
      null,
    );
    const hook = join(repository.bare, 'hooks', 'post-receive');
    await writeFile(
      hook,
      postReceiveHookScript({
        webhookUrl: `${slipway.url}${webhookPath('custom', trigger.id)}`,
        secretEnvOrValue: { value: webhookSecret },
        cloneUrl: `file://${repository.bare}`,
      }),
    );
    await chmod(hook, 0o755);

    const commit = await repository.commit({
      Dockerfile: 'FROM scratch\nCOPY inventory.txt /inventory.txt\n',
      'inventory.txt': 'three crates\n',
    });

    const build = await waitFor(
      'the pushed commit to be built',
      async () => {
        const [latest] = await slipway.services.builds.list('acme/inventory', { limit: 1 });
        if (latest && ['waiting', 'cloning', 'building', 'pushing'].includes(latest.phase)) return undefined;
        return latest;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nbuilder output:\n${builder.output()}`);
    });
    expect(build.phase, (build as Build).error ?? '').toBe('complete');
    expect(build.commit).toBe(commit);
    expect(build.builder).toBe('e2e-builder');
    expect([...build.tags].sort()).toEqual(['git-' + commit.slice(0, 7), 'latest', 'main'].sort());
    for (const tag of build.tags) {
      const image = await inspect(`${slipway.host}/acme/inventory:${tag}`);
      expect(image.Digest).toBe(build.digest);
      expect(image.Labels[revisionLabel]).toBe(commit);
    }
  });

  it('streams the log to a follower while the build runs, and the same entries to a late joiner', async () => {
    // The shell prints computed values, so the lines differ from the RUN command buildah echoes.
    const commit = await sources.commit({
      Dockerfile: `FROM ${slipway.host}/acme/base:1\nRUN echo "tick-$((40+2))" && sleep 2 && echo "tock-$((40+3))"\n`,
    });
    const queued = await startBuild('acme/live', {
      cloneUrl: `file://${sources.bare}`,
      commit,
      tags: ['live'],
    });
    const events = await follow(queued.id);
    const phaseAtConnect = await phaseOf(queued.id);

    const live: ServerSentEvent[] = [];
    const arrivedAt = new Map<string, number>();
    let phaseAtFirstLine: string | undefined;
    for await (const event of events) {
      live.push(event);
      const entry = JSON.parse(event.data) as BuildLogEntryResource;
      if (entry.type === 'line' && (entry.text === 'tick-42' || entry.text === 'tock-43')) {
        arrivedAt.set(entry.text, Date.now());
        if (entry.text === 'tick-42') phaseAtFirstLine = await phaseOf(queued.id);
      }
      if (event.event === 'end') break;
    }
    const entries = live.map((event) => JSON.parse(event.data) as BuildLogEntryResource);

    // Followed from before the build ran its Dockerfile: every entry from the first phase on, each event
    // with its entry's id (the cursor a reconnecting client resumes from).
    expect(['waiting', 'cloning']).toContain(phaseAtConnect);
    expect(entries[0]).toMatchObject({ type: 'phase', phase: 'cloning' });
    expect(live.every((event) => event.id === JSON.parse(event.data).id)).toBe(true);
    expect(phaseAtFirstLine).toBe('building');
    expect(arrivedAt.get('tock-43')! - arrivedAt.get('tick-42')!).toBeGreaterThan(1_500);
    const tick = entries.findIndex((entry) => entry.type === 'line' && entry.text === 'tick-42');
    const tock = entries.findIndex((entry) => entry.type === 'line' && entry.text === 'tock-43');
    const pushing = entries.findIndex((entry) => entry.type === 'phase' && entry.phase === 'pushing');
    expect(0 < tick && tick < tock && tock < pushing).toBe(true);
    expect(entries.at(-1)).toMatchObject({ type: 'end', phase: 'complete' });

    const build = await ended(queued.id);
    expect(build.phase, build.error ?? '').toBe('complete');
    expect((await inspect(`${slipway.host}/acme/live:live`)).Labels[revisionLabel]).toBe(commit);

    // A late joiner gets the same events, ids and all, while the stream is kept after the end (10 min)
    // and, once it expired (deleted here), from the archive; Last-Event-ID resumes after an entry.
    const lateJoiner = async () => {
      expect(await allOf(await follow(queued.id))).toEqual(live);
      expect(await allOf(await follow(queued.id, { 'Last-Event-ID': live[tick]!.id! }))).toEqual(
        live.slice(tick + 1),
      );
      const page = await api.get<BuildLogPageResource>(`/builds/${queued.id}/logs`);
      expect(page.body.entries).toEqual(entries);
      expect(page.body.ended).toBe(true);
    };
    await lateJoiner();
    const redis = slipway.services.redis.connect();
    try {
      expect(await redis.del(buildLogKey(slipway.services.buildLogs.keyPrefix, queued.id))).toBe(1);
    } finally {
      redis.disconnect();
    }
    await lateJoiner();
  });

  it('tells a follower that a build cancelled through the API mid-RUN ended, and stops the step', async () => {
    const sleepMarker = '31.4159';
    const commit = await sources.commit({
      Dockerfile: `FROM ${slipway.host}/acme/base:1\nRUN echo "slow-$((40+2))" && sleep ${sleepMarker}\n`,
    });
    const queued = await startBuild('acme/cancelled', {
      cloneUrl: `file://${sources.bare}`,
      commit,
      tags: ['never'],
    });
    const events = await follow(queued.id);
    const entries: BuildLogEntryResource[] = [];
    let cancelledAt = 0;
    for await (const event of events) {
      const entry = JSON.parse(event.data) as BuildLogEntryResource;
      entries.push(entry);
      if (entry.type === 'line' && entry.text === 'slow-42') {
        expect(await processWithArgumentExists(sleepMarker)).toBe(true);
        const cancelled = await api.post<BuildResource>(`/builds/${queued.id}/cancel`);
        expect(cancelled.status).toBe(202);
        expect(cancelled.body).toMatchObject({ phase: 'building', cancelRequested: true });
        cancelledAt = Date.now();
      }
      if (event.event === 'end') break;
    }
    expect(cancelledAt).toBeGreaterThan(0);
    // A heartbeat (every 2 s) brings the cancellation; buildah then stops the step.
    expect(Date.now() - cancelledAt).toBeLessThan(15_000);
    expect(entries.at(-1)).toMatchObject({ type: 'end', phase: 'cancelled' });
    expect(entries.some((entry) => entry.type === 'phase' && entry.phase === 'pushing')).toBe(false);
    const build = await ended(queued.id);
    expect(build.phase).toBe('cancelled');
    expect(await processWithArgumentExists(sleepMarker)).toBe(false);
    expect((await api.post(`/builds/${queued.id}/cancel`)).status).toBe(409);
    const pulled = await workspace.skopeoRaw([
      'inspect',
      '--tls-verify=false',
      '--creds',
      `${adminUser}:${adminPassword}`,
      `docker://${slipway.host}/acme/cancelled:never`,
    ]);
    expect(pulled.code).not.toBe(0);
  });

  it('builds FROM an image of the pull-through cache with the build token, fetching it upstream once', async () => {
    const from = `${slipway.host}/hub/library/shell:1`;
    // Authentication is on: the cache is for signed-in callers (`pull: users`), builds included.
    expect((await fetch(`${slipway.url}/v2/hub/library/shell/manifests/1`)).status).toBe(401);
    const commit = await sources.commit({
      Dockerfile: `FROM ${from}\nRUN echo "cached-$((6*7))" > /marker && cat /marker\n`,
    });
    const queued = await startBuild('acme/cached', {
      cloneUrl: `file://${sources.bare}`,
      commit,
      tags: ['1'],
    });
    const build = await ended(queued.id);
    expect(build.phase, build.error ?? '').toBe('complete');
    expect((await inspect(`${slipway.host}/acme/cached:1`)).Labels[revisionLabel]).toBe(commit);
    const page = await api.get<BuildLogPageResource>(`/builds/${queued.id}/logs`);
    expect(page.body.entries.some((entry) => entry.type === 'line' && entry.text === 'cached-42')).toBe(true);

    // The base is now in Slipway's cache: served from it without asking the upstream for blobs again.
    const cached = await fetch(`${slipway.url}/v2/hub/library/shell/manifests/1`, {
      headers: { Authorization: adminAuth, Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(cached.status).toBe(200);
    expect(cached.headers.get('x-cache')).toBe('HIT');
    await cached.arrayBuffer();
    await workspace.skopeo([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `${adminUser}:${adminPassword}`,
      `docker://${from}`,
      `oci:${workspace.path('out', 'cached-base')}:1`,
    ]);
    for (const digest of baseBlobs) expect(upstreamBlobFetches(digest), digest).toBe(1);
  });

  it('pulls a Docker Hub image named in FROM by its short name through the cache with --pull-mirror', async () => {
    const commit = await sources.commit({
      // `shell:2` is docker.io/library/shell:2, which the builder pulls from `<slipway>/hub` instead.
      Dockerfile: 'FROM shell:2\nRUN echo "mirrored-$((6*7))"\n',
    });
    const queued = await startBuild('acme/mirrored', {
      cloneUrl: `file://${sources.bare}`,
      commit,
      tags: ['1'],
    });
    const build = await ended(queued.id);
    expect(build.phase, build.error ?? '').toBe('complete');
    expect((await inspect(`${slipway.host}/acme/mirrored:1`)).Labels[revisionLabel]).toBe(commit);
    const page = await api.get<BuildLogPageResource>(`/builds/${queued.id}/logs`);
    expect(page.body.entries.some((entry) => entry.type === 'line' && entry.text === 'mirrored-42')).toBe(
      true,
    );
    // Slipway fetched the tag from the upstream for the build, and keeps it.
    expect(counter.count((r) => r.method === 'GET' && r.url === '/v2/library/shell/manifests/2')).toBe(1);
    const cached = await fetch(`${slipway.url}/v2/hub/library/shell/manifests/2`, {
      headers: { Authorization: adminAuth, Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(cached.headers.get('x-cache')).toBe('HIT');
    await cached.arrayBuffer();
    for (const digest of baseBlobs) expect(upstreamBlobFetches(digest), digest).toBeLessThanOrEqual(1);
  });
});
