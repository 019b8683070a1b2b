import cookie from '@fastify/cookie';
import type { FastifyError, FastifyPluginAsync, FastifyReply } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { ApiError, type ApiErrorCode } from '../../errors.ts';
import type { DeliveryControl } from '../../events/model.ts';
import type { SubscriptionStore } from '../../events/subscriptions.ts';
import { anonymous, type Principal } from '../../identity/accounts.ts';
import type { AuditLog } from '../../identity/audit.ts';
import type { Authenticator } from '../../identity/authenticator.ts';
import type { IdentityService } from '../../identity/service.ts';
import { OciError } from '../../registry/errors.ts';
import type { TagHistory } from '../../registry/tag-history.ts';
import type { UpstreamCatalog } from '../../mirror/cache/upstream-catalog.ts';
import type { MirrorQueue } from '../../mirror/sync/mirror-queue.ts';
import type { MirrorRunner } from '../../mirror/sync/mirror-runner.ts';
import type { MirrorGuard } from '../../mirror/sync/mirror-guard.ts';
import type { MirrorStore } from '../../mirror/sync/mirror-store.ts';
import type { BuildService } from '../../builder/build-service.ts';
import type { BuildStore } from '../../builder/build-store.ts';
import type { BuilderRoster } from '../../builder/builder-roster.ts';
import type { BuildLogReader } from '../../builder/logs/reader.ts';
import type { TriggerStore } from '../../triggers/trigger-store.ts';
import { principalOf } from './authentication.ts';
import { auditRoutes } from './routes/audit.ts';
import { notificationRoutes } from './routes/notifications.ts';
import { organizationRoutes } from './routes/organizations.ts';
import { repositoryRoutes } from './routes/repositories.ts';
import { robotRoutes } from './routes/robots.ts';
import { tagRoutes } from './routes/tags.ts';
import { upstreamRoutes } from './routes/upstreams.ts';
import { userRoutes } from './routes/users.ts';
import { callerRoutes } from './routes/caller.ts';
import { mirrorRoutes } from './routes/mirrors.ts';
import { triggerRoutes } from './routes/triggers.ts';
import { buildRoutes } from './routes/builds.ts';
import { builderRoutes } from './routes/builders.ts';
import { builderProtocolRoutes, type BuilderProtocolOptions } from './routes/builder-protocol.ts';
import type { RouteOptions } from './routes.ts';

export interface ApiOptions {
  identity: IdentityService;
  authenticator: Authenticator;
  audit: AuditLog;
  tagHistory: TagHistory;
  /** Who hears of which events (the `/notifications` routes). */
  subscriptions: SubscriptionStore;
  /** Test events, the delivery log and replays. */
  deliveries: DeliveryControl;
  /** Seconds a session cookie lasts. */
  sessionLifetime: number;
  /** Pull-through upstreams (the `/proxy/upstreams` routes). */
  upstreams: UpstreamCatalog;
  /** Deletes the cached repositories of a removed upstream; how many there were. */
  purgeCache: (upstream: string) => Promise<number>;
  /** Repository mirror definitions (the `/mirrors` routes). */
  mirrors: MirrorStore;
  /** Which repositories are mirrors (written by their robot only); told of every mirror change. */
  mirrorGuard: Pick<MirrorGuard, 'refresh' | 'writeRefusal'>;
  /** Mirror runs: queued, cancelled, and their history. */
  mirrorRunner: MirrorRunner;
  /** Mirror schedules, and the workers that start queued runs. */
  mirrorQueue: MirrorQueue;
  /** Build triggers (the `/triggers` routes). */
  triggers: TriggerStore;
  builds: BuildStore;
  /** Starts and cancels builds (the `/builds` routes). */
  buildService: BuildService;
  /** Reads build logs, live or archived. */
  buildLogs: { reader: BuildLogReader };
  /** The builders taking builds, and what each is doing (the `/builders` route). */
  builders: Pick<BuilderRoster, 'list'>;
  /** Where clients reach the gateway: webhook and log URLs are made from it. */
  publicUrl: () => string;
  /** The builder protocol (`/builder` routes), for builders holding the builder secret. */
  builderProtocol?: BuilderProtocolOptions;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the API request acts as (anonymous without credentials). */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Routes that authenticate by themselves (signing in) or need nobody (the OpenAPI document). */
    skipAuthentication?: boolean;
  }
}

/** Request bodies of the API are small JSON documents. */
const apiBodyLimit = 64 * 1024;

/**
 * The REST API under /api/v1: every route has zod schemas for what it takes and answers (validated,
 * and the source of the OpenAPI document); handlers are thin over the IdentityService. Errors are
 * `{ "error": { "code": "SLW_ERR_…", "message": "…" } }`.
 */
export const apiRoutes: FastifyPluginAsync<ApiOptions> = async (app, options) => {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(cookie);
  app.decorateRequest('principal', null as never);
  app.addHook('onRoute', (route) => {
    route.bodyLimit ??= apiBodyLimit;
  });
  app.addHook('onRequest', async (request) => {
    request.principal = request.routeOptions.config.skipAuthentication
      ? anonymous
      : await principalOf(request, options.authenticator);
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ApiError) {
      if (error.retryAfter) reply.header('Retry-After', String(error.retryAfter));
      return sendError(reply, error.status, error.code, error.message);
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const problems = error.validation.map(
        (issue) => `${error.validationContext ?? 'request'}${issue.instancePath || ''}: ${issue.message}`,
      );
      return sendError(reply, 400, 'SLW_ERR_INVALID', problems.join('; '));
    }
    if (error instanceof OciError) {
      return sendError(
        reply,
        error.status,
        error.status === 404 ? 'SLW_ERR_NOT_FOUND' : 'SLW_ERR_INVALID',
        error.message,
      );
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, error.statusCode, 'SLW_ERR_INVALID', error.message);
    }
    request.log.error({ err: error, url: request.url }, 'API request failed');
    return sendError(reply, 500, 'SLW_ERR_INTERNAL', 'internal error; the gateway log has the details');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'SLW_ERR_NOT_FOUND', `no API route ${request.method} ${request.url.split('?')[0]}`),
  );

  app.get('/openapi.json', { config: { skipAuthentication: true }, schema: { hide: true } }, () =>
    app.swagger(),
  );

  const routes: RouteOptions = {
    identity: options.identity,
    authenticator: options.authenticator,
    audit: options.audit,
    tagHistory: options.tagHistory,
    subscriptions: options.subscriptions,
    deliveries: options.deliveries,
    sessionLifetime: options.sessionLifetime,
    upstreams: options.upstreams,
    purgeCache: options.purgeCache,
    mirrors: options.mirrors,
    mirrorGuard: options.mirrorGuard,
    mirrorRunner: options.mirrorRunner,
    mirrorQueue: options.mirrorQueue,
    triggers: options.triggers,
    builds: options.builds,
    buildService: options.buildService,
    buildLogs: options.buildLogs,
    builders: options.builders,
    publicUrl: options.publicUrl,
    contextOf: (request) => ({ ip: request.ip }),
  };
  await app.register(callerRoutes, routes);
  await app.register(userRoutes, routes);
  await app.register(organizationRoutes, routes);
  await app.register(robotRoutes, routes);
  await app.register(repositoryRoutes, routes);
  await app.register(tagRoutes, routes);
  await app.register(auditRoutes, routes);
  await app.register(notificationRoutes, routes);
  await app.register(upstreamRoutes, routes);
  await app.register(mirrorRoutes, routes);
  await app.register(triggerRoutes, routes);
  await app.register(buildRoutes, routes);
  await app.register(builderRoutes, routes);
  if (options.builderProtocol) {
    await app.register(builderProtocolRoutes, { prefix: '/builder', ...options.builderProtocol });
  }
};

function sendError(
  reply: FastifyReply,
  status: number,
  code: ApiErrorCode | 'SLW_ERR_INTERNAL',
  message: string,
) {
  return reply.code(status).send({ error: { code, message } });
}
