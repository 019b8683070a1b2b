import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MirrorResource, MirrorRunDetailsResource, MirrorRunResource } from '../../src/cli/resources.ts';
import { abandonedRunError, shutdownRunError } from '../../src/mirror/sync/mirror-runner.ts';
import type { Digest } from '../../src/registry/digest.ts';
import { mediaTypes } from '../../src/registry/media-types.ts';
import { ApiCaller } from '../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../helpers/auth.ts';
import {
  holdAfter,
  startCountingProxy,
  type CountingProxy,
  type ProxiedRequest,
} from '../helpers/counting-proxy.ts';
import { DistributionOciClient, startDistribution, type TestDistribution } from '../helpers/distribution.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import { OciClient } from '../helpers/oci-client.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { waitFor } from '../helpers/tools.ts';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.ts';

type Run = MirrorRunDetailsResource;

/**
 * Mirror syncs run by `slipway worker` processes next to a gateway that runs none, sharing its
 * PostgreSQL schema, Redis and data directory; the upstream is a Distribution on loopback behind a
 * proxy that can hold blob bodies. A worker SIGKILLed mid-run leaves its run to its lease, which the
 * next run takes over once it lapses; a worker stopped with SIGTERM ends its run itself.
 */
describe('mirror syncs in worker processes that die', () => {
  const versions = ['1.0', '1.1', '1.2', '1.3'];
  const upstreamDigests = new Map<string, Digest>();
  /** The tag of each layer of team/app. */
  const tagOfLayer = new Map<Digest, string>();
  let shutdownLayer: Digest;
  let upstream: TestDistribution;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let api: ApiCaller;
  let registry: OciClient;
  let workerConfigFile: string;
  let shapeBody: ((request: ProxiedRequest) => ReturnType<typeof holdAfter> | undefined) | undefined;
  let releaseHeldBlobs: (() => void) | undefined;
  const workers: WorkerProcess[] = [];
  /** Worker B: takes over from the killed worker A, then serves the later tests. */
  let survivor: WorkerProcess | undefined;

  beforeAll(async () => {
    upstream = await startDistribution();
    counter = await startCountingProxy(upstream.url, { shapeBody: (request) => shapeBody?.(request) });
    const pusher = new DistributionOciClient(upstream.url);
    for (const version of versions) {
      const pushed = await pusher.pushImage('team/app', version, { layers: [randomBytes(64 * 1024)] });
      upstreamDigests.set(version, pushed.digest);
      tagOfLayer.set(pushed.layerDigests[0]!, version);
    }
    // Blobs of its own: a blob Slipway stores already is linked, never downloaded, so never held.
    shutdownLayer = (await pusher.pushImage('team/shutdown', '1.0', { layers: [randomBytes(64 * 1024)] }))
      .layerDigests[0]!;
    slipway = await startSecuredSlipway({
      database: 'postgres',
      // The gateway trusts what it cached of tags and manifests this long, so it sees soon what the
      // worker processes write (5 s by default, as between any two replicas).
      config: { mirrors: { worker: false }, registry: { cacheTtl: '50ms' } },
    });
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.robot('acme', 'mirror');
    api = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    registry = new OciClient(slipway.url, { Authorization: basic(adminUser, adminPassword) });
    workerConfigFile = join(slipway.dataDir, 'worker.yaml');
    // Renewed every second, a lease of 3 s lapses soon after its worker is killed.
    await writeFile(workerConfigFile, 'mirrors:\n  lease: 3\n');
  });

  afterAll(async () => {
    releaseHeldBlobs?.();
    await Promise.all(workers.map((worker) => worker.kill()));
    await slipway?.stop();
    await counter?.stop();
    await upstream?.stop();
  });

  function startWorker(): WorkerProcess {
    const worker = spawnWorker(
      {
        DATABASE_URL: inject('databaseUrl'),
        SLIPWAY_DATABASE_SCHEMA: slipway.services.config.database.schema!,
        REDIS_URL: inject('redisUrl'),
        SLIPWAY_DATA: slipway.dataDir,
        SLIPWAY_AUTH_ENABLED: 'false',
        SLIPWAY_LOG_LEVEL: 'warn',
      },
      ['--config', workerConfigFile],
    );
    workers.push(worker);
    return worker;
  }

  const survivingWorker = () => (survivor ??= startWorker());

  /** Rethrows a failed wait with what the worker logged, which says why it did not get there. */
  const withOutputOf = (worker: WorkerProcess) => (error: Error) => {
    throw new Error(`${error.message}\nworker output:\n${worker.output()}`);
  };

  /** Holds the body of each blob download `shouldHold` picks after its first KiB, until released. */
  function holdDownloads(shouldHold: (blob: Digest) => boolean): () => void {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    shapeBody = (request) => {
      const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(request.url)?.[1] as Digest | undefined;
      return request.method === 'GET' && blob !== undefined && shouldHold(blob)
        ? holdAfter(1024, held)
        : undefined;
    };
    releaseHeldBlobs = () => {
      shapeBody = undefined;
      release();
    };
    return releaseHeldBlobs;
  }

  async function createMirror(repository: string, remote: string): Promise<void> {
    const created = await api.post<MirrorResource>('/mirrors', {
      repository,
      upstream: { url: counter.url, repository: remote },
      robot: 'mirror',
      // Disabled: only the syncs a test asks for run. One tag at a time, so the held one stops the rest.
      enabled: false,
      concurrency: 1,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }

  const runOf = async (repository: string, id: number) =>
    (await api.get<Run>(`/mirrors/${repository}/runs/${id}`)).body;

  const mirrorStateOf = async (repository: string) =>
    (await api.get<MirrorResource>(`/mirrors/${repository}`)).body.state;

  async function finishedRun(repository: string, id: number, worker: WorkerProcess): Promise<Run> {
    return waitFor(
      `run ${id} of ${repository} to end`,
      async () => {
        const run = await runOf(repository, id);
        return run.state !== 'queued' && run.state !== 'syncing' ? run : undefined;
      },
      { timeoutMs: 20_000 },
    ).catch(withOutputOf(worker));
  }

  /** Whether the run's lease, as the database sees it, has not lapsed yet. */
  async function leaseHolds(runId: number): Promise<boolean> {
    const { rows } = await slipway.services.db.query<{ holds: boolean }>(
      'SELECT COALESCE(lease_expires_at > now(), false) AS holds FROM mirror_runs WHERE id = $1',
      [runId],
    );
    return rows[0]!.holds;
  }

  async function mirrorEvents(repository: string): Promise<Array<Record<string, unknown>>> {
    const { rows } = await slipway.services.db.query<{ payload: Record<string, unknown> | string }>(
      `SELECT payload FROM events WHERE kind LIKE 'repo_mirror_sync_%' AND repository = $1 ORDER BY seq`,
      [repository],
    );
    return rows.map((row) => (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload));
  }

  async function localTags(repository: string): Promise<string[]> {
    const response = await registry.fetch(`/v2/${repository}/tags/list`);
    expect(response.status).toBe(200);
    return (((await response.json()) as { tags: string[] | null }).tags ?? []).sort();
  }

  /** Each tag is at its upstream digest, and its manifest's blobs are all there: no tag was half-moved. */
  async function expectWhole(repository: string, tags: readonly string[]): Promise<void> {
    for (const tag of tags) {
      const response = await registry.fetch(`/v2/${repository}/manifests/${tag}`, {
        headers: { Accept: mediaTypes.ociManifest },
      });
      expect(response.status, `${repository}:${tag}`).toBe(200);
      expect(response.headers.get('docker-content-digest'), `${repository}:${tag}`).toBe(
        upstreamDigests.get(tag),
      );
      const manifest = (await response.json()) as {
        config: { digest: string };
        layers: { digest: string }[];
      };
      for (const blob of [manifest.config, ...manifest.layers]) {
        const status = await registry.status(`/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD' });
        expect(status, `${repository}:${tag} blob ${blob.digest}`).toBe(200);
      }
    }
  }

  it('a killed worker holds its run until the lease lapses; the next run takes over and copies the rest', async () => {
    await createMirror('acme/app', 'team/app');
    // One tag at a time (in the upstream's order): the third layer downloaded is the third tag's.
    let layersDownloaded = 0;
    let heldTag: string | undefined;
    const releaseHeldLayer = holdDownloads((blob) => {
      const tag = tagOfLayer.get(blob);
      if (tag === undefined || ++layersDownloaded !== 3) return false;
      heldTag = tag;
      return true;
    });
    const workerA = startWorker();
    let abandonedId: number;
    let copiedByA: string[];
    try {
      const asked = await api.post<MirrorRunResource>('/mirrors/acme/app/sync', {});
      expect(asked.status).toBe(202);
      abandonedId = asked.body.id;
      const held = await waitFor(
        'worker A to copy two tags and be held in the layer of the third',
        async () => {
          const run = await runOf('acme/app', abandonedId);
          return run.state === 'syncing' && run.tags.length === 2 && heldTag !== undefined ? run : undefined;
        },
        { timeoutMs: 30_000 },
      ).catch(withOutputOf(workerA));
      await workerA.kill();
      copiedByA = held.tags.map((t) => t.tag).sort();
      expect(copiedByA).not.toContain(heldTag);
      // Started now, the replacement worker is up by the time the lease lapses.
      survivingWorker();

      // While its lease holds, the run is the dead worker's: still syncing, and no other run may start.
      expect(await runOf('acme/app', abandonedId)).toMatchObject({ state: 'syncing', finishedAt: null });
      expect(await mirrorStateOf('acme/app')).toBe('syncing');
      const refused = await api.post('/mirrors/acme/app/sync', {});
      expect(refused.status, 'a sync asked for while the lease of the dead worker holds').toBe(409);
      expect(refused.body.error?.message).toContain(`run ${abandonedId}`);
      expect(await leaseHolds(abandonedId)).toBe(true);
      // The tag being copied when the worker died did not move, and the one after it never started.
      expect(await localTags('acme/app')).toEqual(copiedByA);
      await expectWhole('acme/app', copiedByA);

      await waitFor('the lease of the killed worker to lapse', async () =>
        (await leaseHolds(abandonedId)) ? undefined : true,
      );
      expect((await runOf('acme/app', abandonedId)).state).toBe('syncing');
    } finally {
      releaseHeldLayer();
      await workerA.kill();
    }

    const workerB = survivingWorker();
    const takeover = await api.post<MirrorRunResource>('/mirrors/acme/app/sync', {});
    expect(takeover.status, JSON.stringify(takeover.body)).toBe(202);
    const abandoned = await runOf('acme/app', abandonedId);
    expect(abandoned).toMatchObject({
      state: 'failed',
      error: abandonedRunError,
      totals: { copied: 2, failed: 0 },
      tags: copiedByA.map((tag) => ({ tag, outcome: 'copied', digest: upstreamDigests.get(tag) })),
    });
    expect(abandoned.finishedAt).not.toBeNull();

    const run = await finishedRun('acme/app', takeover.body.id, workerB);
    expect(run).toMatchObject({ state: 'success', trigger: 'manual', error: null });
    expect(Object.fromEntries(run.tags.map((t) => [t.tag, t.outcome]))).toEqual(
      Object.fromEntries(versions.map((tag) => [tag, copiedByA.includes(tag) ? 'unchanged' : 'copied'])),
    );
    expect(await localTags('acme/app')).toEqual(versions);
    await expectWhole('acme/app', versions);
    expect(await mirrorStateOf('acme/app')).toBe('success');

    const events = await mirrorEvents('acme/app');
    expect(events.map((e) => e.kind)).toEqual([
      'repo_mirror_sync_started',
      'repo_mirror_sync_failed',
      'repo_mirror_sync_started',
      'repo_mirror_sync_success',
    ]);
    expect(events[1]).toMatchObject({
      message: `run ${abandonedId} of acme/app failed: ${abandonedRunError}`,
      synced: 2,
      failed: 0,
    });
  });

  it('a worker process syncs an enabled mirror on its schedule, with no sync asked for', async () => {
    const worker = survivingWorker();
    await createMirror('acme/scheduled', 'team/app');
    const enabled = await api.patch<MirrorResource>('/mirrors/acme/scheduled', {
      enabled: true,
      schedule: { interval: '1h' },
    });
    expect(enabled.status, JSON.stringify(enabled.body)).toBe(200);
    const runs = await waitFor(
      'the scheduled run to succeed',
      async () => {
        const { runs } = (await api.get<{ runs: MirrorRunResource[] }>('/mirrors/acme/scheduled/runs')).body;
        return runs[0]?.state === 'success' ? runs : undefined;
      },
      { timeoutMs: 20_000 },
    ).catch(withOutputOf(worker));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ trigger: 'schedule', totals: { copied: versions.length, failed: 0 } });
    expect(await localTags('acme/scheduled')).toEqual(versions);
    await expectWhole('acme/scheduled', versions);
  });

  it('SIGTERM ends the run under way failed, saying the worker was shut down, and the worker exits 0', async () => {
    const worker = survivingWorker();
    await createMirror('acme/shutdown', 'team/shutdown');
    let layerHeld = false;
    const releaseHeldLayer = holdDownloads((blob) => {
      if (blob !== shutdownLayer) return false;
      layerHeld = true;
      return true;
    });
    try {
      const asked = await api.post<MirrorRunResource>('/mirrors/acme/shutdown/sync', {});
      expect(asked.status).toBe(202);
      await waitFor('the run to be held in its layer', async () =>
        (await runOf('acme/shutdown', asked.body.id)).state === 'syncing' && layerHeld ? true : undefined,
      ).catch(withOutputOf(worker));

      expect(await worker.terminate(), worker.output()).toBe(0);
      const run = await runOf('acme/shutdown', asked.body.id);
      expect(run).toMatchObject({ state: 'failed', error: shutdownRunError, cancelRequested: false });
      expect(run.finishedAt).not.toBeNull();
    } finally {
      releaseHeldLayer();
    }
    expect(await mirrorStateOf('acme/shutdown')).toBe('failed');
    expect(await localTags('acme/shutdown')).toEqual([]);
    const events = await mirrorEvents('acme/shutdown');
    expect(events.map((e) => e.kind)).toEqual(['repo_mirror_sync_started', 'repo_mirror_sync_failed']);
    expect(events[1]!.message).toContain(shutdownRunError);
  });
});
