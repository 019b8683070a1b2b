import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { RegistryAccess } from '../registry/http/access.ts';
import registryAuditPlugin from './auth/registry-audit.ts';
import { TokenRegistryAccess } from './auth/registry-access.ts';
import { tokenRoutes } from './auth/token-routes.ts';
import { registryRoutes } from '../registry/http/routes.ts';
import accessLogPlugin from './plugins/access-log.ts';
import { healthRoutes } from './plugins/health.ts';
import metricsPlugin from './plugins/metrics.ts';
import type { Services } from './services.ts';
import { apiPrefix, registerOpenApi } from './api/openapi.ts';
import { apiRoutes } from './api/plugin.ts';
import { webhookRoutes } from './webhooks/plugin.ts';
import { builderHello } from '../builder/build-control.ts';

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface AppOptions {
  logger?: FastifyServerOptions['logger'];
  access?: RegistryAccess;
}

/** Builds the gateway's HTTP app without listening, so tests can `inject` or listen on a random port. */
export async function buildApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: services.config.logLevel },
    // Blob bodies stream through; the manifest limit is enforced by the registry routes themselves.
    bodyLimit: services.config.registry.maxManifestBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Per-request log lines would cost more than a cached manifest GET; failures are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger (and its serialised bindings) per request: handlers log through the app's logger.
    childLoggerFactory: (logger) => logger,
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 2048 },
  });
  await app.register(metricsPlugin, { registry: services.metricsRegistry });
  if (services.config.accessLog) await app.register(accessLogPlugin);
  await app.register(healthRoutes, { db: services.db, driver: services.driver });
  const access = options.access ?? services.auth.registryAccess;
  await app.register(registryAuditPlugin, {
    audit: services.auth.audit,
    actorOf: (request) => (access instanceof TokenRegistryAccess ? access.actorOf(request) : undefined),
  });
  await registerOpenApi(app, packageVersion);
  await app.register(apiRoutes, {
    prefix: apiPrefix,
    identity: services.auth.identity,
    authenticator: services.auth.authenticator,
    audit: services.auth.audit,
    tagHistory: services.tagHistory,
    subscriptions: services.subscriptions,
    deliveries: services.deliveries,
    sessionLifetime: services.config.auth.sessionLifetime,
    upstreams: services.upstreamCatalog,
    purgeCache: (upstream) => services.store.deleteNamespaceRepositories(upstream),
    mirrors: services.mirrors,
    mirrorGuard: services.mirrorGuard,
    mirrorRunner: services.mirrorRunner,
    mirrorQueue: services.mirrorQueue,
    triggers: services.triggers,
    builds: services.builds,
    buildService: services.buildService,
    buildLogs: services.buildLogs,
    builders: services.builders,
    publicUrl: () => services.publicUrl.value,
    builderProtocol: {
      secret: services.config.builds.builderSecret,
      buildService: services.buildService,
      // The build queue and the log streams share the installation's prefix.
      hello: () =>
        builderHello(services.publicUrl.value, {
          queue: services.buildLogs.keyPrefix,
          logKey: services.buildLogs.keyPrefix,
        }),
    },
  });
  await app.register(webhookRoutes, {
    prefix: '/webhooks',
    triggers: services.triggers,
    buildService: services.buildService,
    publicUrl: () => services.publicUrl.value,
  });
  await app.register(tokenRoutes, {
    tokens: services.auth.tokens,
    authenticator: services.auth.authenticator,
    audit: services.auth.audit,
  });
  await app.register(registryRoutes, {
    store: services.registryStore,
    access,
    maxManifestBytes: services.config.registry.maxManifestBytes,
    resolveName: (name, ns) => services.upstreams.nameFor(name, ns),
  });
  return app;
}
