import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../db/database.ts';
import type { Digest } from '../registry/digest.ts';
import { migrate } from '../db/migrate.ts';
import { queuePrefix } from '../db/queue-prefix.ts';
import { openRedis, type RedisConnection } from '../db/redis.ts';
import { destinationProblem } from '../events/destinations.ts';
import type { DeliveryControl } from '../events/model.ts';
import { Outbox } from '../events/outbox.ts';
import type { EventsLogger } from '../events/logger.ts';
import { EventDelivery } from '../events/service.ts';
import { SubscriptionStore } from '../events/subscriptions.ts';
import { loadSealedBox, type SealedBox } from '../identity/sealed-box.ts';
import { openPglite } from '../db/pglite.ts';
import { openPostgres } from '../db/postgres.ts';
import { GarbageCollector, type GcPolicy } from '../registry/gc.ts';
import { LocalRegistryStore } from '../registry/local-store.ts';
import { CacheEvictor } from '../mirror/cache/eviction.ts';
import { createCacheMetrics, RateLimitMetrics } from '../mirror/cache/metrics.ts';
import { ProxyCacheStore } from '../mirror/cache/proxy-cache-store.ts';
import { PullTracker } from '../mirror/cache/pull-tracker.ts';
import { UpstreamCatalog } from '../mirror/cache/upstream-catalog.ts';
import { UpstreamStore } from '../mirror/cache/upstream-store.ts';
import { ProxyUpstreams } from '../mirror/cache/upstreams.ts';
import { MirrorGuard } from '../mirror/sync/mirror-guard.ts';
import { MirrorQueue } from '../mirror/sync/mirror-queue.ts';
import { MirrorRunner } from '../mirror/sync/mirror-runner.ts';
import { MirrorStore } from '../mirror/sync/mirror-store.ts';
import { MirrorWorker } from '../mirror/sync/mirror-worker.ts';
import type { RegistryStore } from '../registry/store.ts';
import { MetadataCache } from '../registry/metadata/cache.ts';
import { createRegistryMetrics, type RegistryMetrics } from '../registry/metrics.ts';
import type { BlobDriver } from '../registry/storage/driver.ts';
import { TagHistory } from '../registry/tag-history.ts';
import { BuildLogArchive } from '../builder/logs/archive.ts';
import { BuildLogReader } from '../builder/logs/reader.ts';
import { endLogAsBuilder } from '../builder/logs/writer.ts';
import { BuildQueue } from '../builder/build-queue.ts';
import { BuildService } from '../builder/build-service.ts';
import { BuildStore } from '../builder/build-store.ts';
import { BuilderRoster } from '../builder/builder-roster.ts';
import { TriggerStore } from '../triggers/trigger-store.ts';
import { createAuth, type Auth } from './auth/compose.ts';
import type { Config } from './config.ts';
import { createBlobDriver } from './storage.ts';

/** Everything a gateway process holds open, built once from the config and closed once. */
export interface Services {
  config: Config;
  db: Database;
  driver: BlobDriver;
  store: LocalRegistryStore;
  /** What /v2 serves: the local store behind the pull-through cache. */
  registryStore: RegistryStore;
  upstreams: ProxyUpstreams;
  /** The upstreams of the config file and of the API, kept the same on every replica. */
  upstreamCatalog: UpstreamCatalog;
  tagHistory: TagHistory;
  /** Repository mirror definitions. */
  mirrors: MirrorStore;
  /** Which repositories are mirrors, in memory: only their robot writes to them. */
  mirrorGuard: MirrorGuard;
  /** Runs mirror syncs, one per mirror at a time across replicas, and keeps their history. */
  mirrorRunner: MirrorRunner;
  /** Mirror schedules, and syncs asked for, handed to the workers. */
  mirrorQueue: MirrorQueue;
  /** Runs mirror syncs in this process until stopped (`slipway worker`, or serve with `mirrors.worker`). */
  startMirrorWorker(logger: EventsLogger): Promise<MirrorWorker>;
  /** Build triggers: what turns a git push into a build. */
  triggers: TriggerStore;
  builds: BuildStore;
  /** Builds from request to end: webhooks and the API ask, builders claim and report. */
  buildService: BuildService;
  /** Live build logs in Redis, and their archives in blob storage once builds end. */
  buildLogs: { keyPrefix: string; reader: BuildLogReader; archive: BuildLogArchive };
  /** The builders announcing themselves, and the builds each holds. */
  builders: BuilderRoster;
  gc: GarbageCollector;
  gcPolicy: GcPolicy;
  /** Notes pulls of cached tags and writes them in batches; `start` it where pulls are served. */
  pullTracker: PullTracker;
  /** Keeps each upstream's cache within its storage budget. */
  cacheEviction: CacheEvictor;
  metricsRegistry: MetricsRegistry;
  metrics: RegistryMetrics;
  auth: Auth;
  redis: RedisConnection;
  /** Seals secrets stored in the database (webhook secrets and URLs, upstream credentials). */
  sealedBox: SealedBox;
  /** Where clients reach this registry, e.g. https://registry.example.com; set once listening. */
  publicUrl: { value: string };
  outbox: Outbox;
  subscriptions: SubscriptionStore;
  /** Test events, the delivery log and replays. */
  deliveries: DeliveryControl;
  /** The delivery queue, and the dispatcher and worker loops to `start` in this process. */
  eventDelivery: EventDelivery;
  close(): Promise<void>;
}

export async function createServices(config: Config): Promise<Services> {
  await mkdir(config.dataDir, { recursive: true });
  const db = config.database.url
    ? await openPostgres({
        url: config.database.url,
        maxConnections: config.database.maxConnections,
        ...(config.database.schema ? { schema: config.database.schema } : {}),
      })
    : await openPglite(join(config.dataDir, 'pglite'));
  let redis: RedisConnection | undefined;
  try {
    await migrate(db);
    redis = await openRedis({ url: config.redis.url, dataDir: config.dataDir });
    const sealedBox = await loadSealedBox(config.dataDir, config.secretKey);
    const publicUrl = { value: config.publicUrl ?? `http://${config.listen}` };
    // Set once event delivery exists, which needs the outbox itself.
    let wakeDispatcher = () => {};
    const outbox = new Outbox({
      registryHost: () => new URL(publicUrl.value).host,
      onWritten: () => wakeDispatcher(),
    });
    const metricsRegistry = new MetricsRegistry();
    collectDefaultMetrics({ register: metricsRegistry, prefix: 'slipway_' });
    const metrics = createRegistryMetrics(metricsRegistry);
    const driver = await createBlobDriver(config, metrics);
    const cache = new MetadataCache({
      maxManifestBytes: config.registry.cacheManifestMiB * 1024 * 1024,
      ttlMs: config.registry.cacheTtl * 1000,
    });
    const store = new LocalRegistryStore({
      db,
      driver,
      cache,
      metrics,
      redirectSeconds: config.storage.s3?.redirectSeconds ?? 0,
      tagChanges: outbox.tagChangeListener(),
    });
    const upstreams = new ProxyUpstreams(config.proxy.upstreams, {
      rateLimits: new RateLimitMetrics(metricsRegistry),
    });
    const upstreamCatalog = new UpstreamCatalog({
      upstreams,
      store: new UpstreamStore(db, sealedBox),
      namespaceTaken: async (name) =>
        (await db.query('SELECT 1 FROM accounts WHERE name = $1', [name])).rows.length > 0,
    });
    await upstreamCatalog.start();
    // Always in front: upstreams may be added through the API at any time.
    const pullTracker = new PullTracker(db);
    const proxyCache = new ProxyCacheStore({
      db,
      local: store,
      upstreams,
      spoolDir: join(config.dataDir, 'proxy-spool'),
      fillLeaseSeconds: config.proxy.fillLease,
      pulls: pullTracker,
    });
    await proxyCache.sweepSpool();
    const registryStore: RegistryStore = proxyCache;
    const tagHistory = new TagHistory(
      db,
      (repository, tag) => cache.forgetTag(repository, tag),
      outbox.tagChangeListener(),
    );
    const gc = new GarbageCollector(db, driver, metrics, {
      expireUpload: (id) => store.expireUpload(id),
      forgetBlobs: (digests) => store.forgetBlobs(digests),
      forgetManifest: (repository, digest) => store.forgetManifest(repository, digest),
    });
    const cacheEviction = new CacheEvictor({
      db,
      upstreams,
      gc,
      pulls: pullTracker,
      cache,
      metrics: createCacheMetrics(metricsRegistry),
    });
    const gcPolicy: GcPolicy = {
      untaggedGraceSeconds: config.gc.untaggedGrace,
      blobGraceSeconds: config.gc.blobGrace,
      uploadExpirySeconds: config.gc.uploadExpiry,
    };
    const mirrors = new MirrorStore(db, sealedBox);
    const mirrorGuard = new MirrorGuard({ store: mirrors });
    await mirrorGuard.start();
    const mirrorRunner = new MirrorRunner({
      db,
      mirrors,
      local: store,
      outbox,
      leaseSeconds: config.mirrors.lease,
      queueTimeoutSeconds: config.mirrors.queueTimeout,
    });
    const mirrorQueue = new MirrorQueue({ redis, prefix: await queuePrefix(db) });
    const startMirrorWorker = async (logger: EventsLogger) => {
      const worker = new MirrorWorker({
        redis: redis!,
        queue: mirrorQueue,
        runner: mirrorRunner,
        mirrors,
        logger,
        concurrency: config.mirrors.concurrency,
      });
      await worker.start();
      return worker;
    };
    const auth = await createAuth(config, db, store, upstreams, {
      writeRefusal: (repository, actor) => mirrorGuard.writeRefusal(repository, actor),
    });
    const prefix = await queuePrefix(db);
    const triggers = new TriggerStore(db, sealedBox);
    const builds = new BuildStore(db);
    const buildQueue = new BuildQueue({ redis, prefix });
    const logRedis = redis.connect();
    const buildLogArchive = new BuildLogArchive({ redis: logRedis, keyPrefix: prefix, driver });
    const buildLogs = {
      keyPrefix: prefix,
      archive: buildLogArchive,
      reader: new BuildLogReader({
        redis: logRedis,
        connection: redis,
        keyPrefix: prefix,
        archive: buildLogArchive,
        archivedLogOf: async (buildId: string) => (await builds.get(buildId))?.logDigest as Digest | null,
      }),
    };
    const builders = new BuilderRoster({ db, redis: logRedis, prefix });
    builders.registerMetrics(metricsRegistry);
    const { buildTokens } = auth;
    const buildService = new BuildService({
      db,
      builds,
      triggers,
      outbox,
      queue: buildQueue,
      credentials: {
        issue: (buildId, repository, expiresAt, pullRobot) =>
          buildTokens.issueBuildToken({ buildId, repository, expiresAt, pullRobot }),
        revoke: async (buildId) => {
          await buildTokens.revokeBuildToken(buildId);
        },
      },
      archiveLog: async (buildId) => {
        const archived = await buildLogArchive.archive(buildId);
        // The hold goes with the build (retention, or its repository's deletion); GC then takes the log.
        await db.query(
          'INSERT INTO blob_holds (digest, holder, build_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [archived.digest, `build-log:${buildId}`, buildId],
        );
        return archived.digest;
      },
      endLog: (buildId, end) => endLogAsBuilder({ redis: logRedis, keyPrefix: prefix, buildId }, end),
      registryHost: () => new URL(publicUrl.value).host,
      timeoutSeconds: config.builds.timeout,
      claimSeconds: config.builds.claim,
      queueTimeoutSeconds: config.builds.queueTimeout,
      retention: { keep: config.builds.retention.keep, maxAgeSeconds: config.builds.retention.maxAge },
    });
    const subscriptions = new SubscriptionStore({
      db,
      sealedBox,
      destinationProblem: (url) => destinationProblem(url, config.events.allowPrivateDestinations),
    });
    const eventDelivery = await EventDelivery.open({
      config: config.events,
      db,
      redis,
      outbox,
      subscriptions,
      metricsRegistry,
      publicUrl: () => publicUrl.value,
    });
    wakeDispatcher = () => eventDelivery.wake();
    return {
      config,
      db,
      driver,
      store,
      registryStore,
      upstreams,
      upstreamCatalog,
      tagHistory,
      mirrors,
      mirrorGuard,
      mirrorRunner,
      mirrorQueue,
      startMirrorWorker,
      triggers,
      builds,
      buildService,
      buildLogs,
      builders,
      gc,
      gcPolicy,
      pullTracker,
      cacheEviction,
      metricsRegistry,
      metrics,
      auth,
      redis,
      sealedBox,
      publicUrl,
      outbox,
      subscriptions,
      deliveries: eventDelivery.control,
      eventDelivery,
      close: async () => {
        await auth.audit.flush();
        await pullTracker.close().catch(() => {});
        await driver.close();
        upstreamCatalog.stop();
        mirrorGuard.stop();
        await upstreams.close();
        await mirrorQueue.close();
        await buildQueue.close();
        await eventDelivery.close();
        await redis!.close();
        await db.close();
      },
    };
  } catch (error) {
    await redis?.close().catch(() => {});
    await db.close().catch(() => {});
    throw error;
  }
}
