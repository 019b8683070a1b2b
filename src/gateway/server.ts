import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import { buildApp } from './app.ts';
import type { Config } from './config.ts';
import { tuneGarbageCollectionForStreaming } from './runtime-tuning.ts';
import type { EvictionReport } from '../mirror/cache/eviction.ts';
import { ProxyCacheStore } from '../mirror/cache/proxy-cache-store.ts';
import { createServices, type Services } from './services.ts';
import { builderHello } from '../builder/build-control.ts';
import { startLocalBuilder } from '../builder/builder-local.ts';
import { scheduleBuildSweep } from '../builder/builder-sweeper.ts';
import { GitLabTriggerSync, syncGitLabHooksInBackground } from '../triggers/gitlab-sync.ts';
import { webhookPath } from './webhooks/deliveries.ts';

export interface RunningServer {
  app: FastifyInstance;
  services: Services;
  /** The bound address, e.g. http://127.0.0.1:5000. */
  url: string;
  close(): Promise<void>;
}

/** Starts the gateway: services, HTTP listener, the garbage-collection loop, event delivery and mirror syncs. */
export async function startServer(config: Config): Promise<RunningServer> {
  const services = await createServices(config);
  // After the database opened: PGlite's first start (initdb) peaks ~180 MiB higher with it.
  tuneGarbageCollectionForStreaming();
  const app = await buildApp(services);
  const { host, port } = splitListen(config.listen);
  try {
    await app.listen({ host, port });
  } catch (error) {
    await services.close();
    throw error;
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${isWildcard(host) ? '127.0.0.1' : host}:${boundPort}`;
  // On every interface, the machine's name is a better guess than loopback at what clients use.
  if (!config.publicUrl) {
    services.publicUrl.value = isWildcard(host) ? `http://${hostname()}:${boundPort}` : url;
  }
  app.log.info(
    { url, database: services.db.kind, storage: services.driver.kind, dataDir: config.dataDir },
    'slipway is serving the registry',
  );

  const { firstAdmin } = services.auth;
  if (firstAdmin) {
    app.log.warn(
      { user: firstAdmin.name, passwordFile: firstAdmin.passwordFile },
      'created the first superuser with a generated password: read it from the file, log in, and change it (or set SLIPWAY_ADMIN_USER and SLIPWAY_ADMIN_PASSWORD before the first start)',
    );
  }
  if (services.registryStore instanceof ProxyCacheStore) services.registryStore.useLogger(app.log);
  services.pullTracker.start(app.log);
  const gcTimer = config.gc.enabled ? scheduleGc(app, services) : undefined;
  const evictionTimer = config.proxy.evictionInterval > 0 ? scheduleEviction(app, services) : undefined;
  // After listening, so deliveries carry the public URL it settled on.
  const delivery = config.events.worker ? services.eventDelivery.start({ logger: app.log }) : undefined;
  const mirrorWorker = config.mirrors.worker ? await services.startMirrorWorker(app.log) : undefined;
  const stopBuildSweep = scheduleBuildSweep(services.buildService, app.log);
  // Only for a public URL the operator set: a guessed one (host name, port) is no reason to rewrite hooks.
  const gitlabHookSync = config.publicUrl
    ? syncGitLabHooksInBackground(
        new GitLabTriggerSync({
          triggers: services.triggers,
          webhookUrlOf: (trigger) =>
            `${services.publicUrl.value}${webhookPath(trigger.provider, trigger.id)}`,
        }),
        app.log,
      )
    : undefined;
  const localBuilder = config.builds.localBuilder
    ? await startLocalBuilder({
        wanted: config.builds.localBuilder,
        buildah: {
          ...(config.builds.isolation && { isolation: config.builds.isolation }),
          ...(config.builds.storageDriver && { storageDriver: config.builds.storageDriver }),
        },
        buildService: services.buildService,
        redis: services.redis,
        hello: () =>
          builderHello(services.publicUrl.value, {
            queue: services.buildLogs.keyPrefix,
            logKey: services.buildLogs.keyPrefix,
          }),
        logger: app.log,
      })
    : null;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      if (gcTimer) clearInterval(gcTimer);
      if (evictionTimer) clearInterval(evictionTimer);
      stopBuildSweep();
      gitlabHookSync?.stop();
      await localBuilder?.stop();
      await app.close();
      await mirrorWorker?.stop();
      await delivery?.stop();
      await services.close();
    })());
  return { app, services, url, close };
}

function scheduleGc(app: FastifyInstance, services: Services): NodeJS.Timeout {
  const run = async () => {
    try {
      const report = await services.gc.run(services.gcPolicy);
      if (report && report.uploads + report.manifests + report.blobs > 0) {
        app.log.info({ gc: report }, 'garbage collection removed unreferenced content');
      }
    } catch (error) {
      app.log.error({ err: error }, 'garbage collection failed; it will run again at the next interval');
    }
  };
  const timer = setInterval(run, services.config.gc.interval * 1000);
  timer.unref();
  return timer;
}

function scheduleEviction(app: FastifyInstance, services: Services): NodeJS.Timeout {
  const run = async () => {
    try {
      const report = await services.cacheEviction.run();
      if (report) logEviction(app.log, report);
    } catch (error) {
      app.log.error({ err: error }, 'cache eviction failed; it will run again at the next interval');
    }
  };
  const timer = setInterval(run, services.config.proxy.evictionInterval * 1000);
  timer.unref();
  return timer;
}

/** Most entries named in one log line. */
const loggedEntries = 100;

function logEviction(log: FastifyBaseLogger, report: EvictionReport): void {
  for (const upstream of report.upstreams) {
    const { evicted } = upstream;
    if (evicted.length > 0) {
      const entries = evicted
        .slice(0, loggedEntries)
        .map((e) => (e.tag === null ? `${e.repository}@${e.digest}` : `${e.repository}:${e.tag}`));
      if (evicted.length > loggedEntries) entries.push(`… and ${evicted.length - loggedEntries} more`);
      log.info(
        {
          upstream: upstream.upstream,
          budget: upstream.budget,
          bytes: upstream.bytes,
          evictedBytes: upstream.evictedBytes,
          evicted: entries,
        },
        'evicted the least recently pulled cache entries of an upstream over its storage budget',
      );
    }
    if (upstream.overBudget) {
      log.warn(
        { upstream: upstream.upstream, budget: upstream.budget, bytes: upstream.bytes },
        'upstream cache is still over its storage budget with nothing left to evict: what is left is pinned',
      );
    }
  }
  if (report.blobsDeleted > 0) {
    log.info(
      { blobs: report.blobsDeleted, bytes: report.bytesDeleted },
      'deleted blobs that only evicted cache entries used',
    );
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

export function splitListen(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(listen.slice(colon + 1)) };
}
