import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { BuildService } from '../../builder/build-service.ts';
import type { Build } from '../../builder/build-store.ts';
import { WebhookRefusedError } from '../../triggers/errors.ts';
import type { TriggerProvider } from '../../triggers/trigger-settings.ts';
import type { TriggerStore } from '../../triggers/trigger-store.ts';
import { buildLogUrl } from '../api/routes/builds.ts';
import { webhookProviders, type DeliveryReader } from './deliveries.ts';

export interface WebhookOptions {
  triggers: Pick<TriggerStore, 'get' | 'webhookSecret'>;
  buildService: Pick<BuildService, 'fromPush'>;
  /** Where clients reach the gateway, for the log URL in answers. */
  publicUrl: () => string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The git provider a webhook route takes deliveries from. */
    webhookProvider?: TriggerProvider;
  }
}

/** GitHub caps webhook payloads at 25 MB; GitLab's and custom pushes are far smaller. */
export const webhookBodyLimit = 25 * 1024 * 1024;

/** The build a delivery queued (or found already building), as the git provider's delivery log shows it. */
function queuedBuild(build: Build, publicUrl: string) {
  return {
    id: build.id,
    repository: build.repository,
    phase: build.phase,
    ref: build.ref,
    commit: build.commit,
    tags: build.tags,
    logUrl: buildLogUrl(publicUrl, build.id),
  };
}

/**
 * `/webhooks/{github,gitlab,git}/{triggerId}`: git providers announce pushes here. Outside /api/v1 and
 * its authentication: a delivery proves itself with the trigger's secret (a signature over the raw body,
 * or GitLab's token), so bodies are kept as the exact bytes received. A trigger of another provider is
 * answered as an unknown one. Every refusal is logged and queues nothing.
 */
export const webhookRoutes: FastifyPluginAsync<WebhookOptions> = async (app, options) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: webhookBodyLimit }, (_request, body, done) =>
    done(null, body),
  );

  function refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    code: string,
    message: string,
  ): FastifyReply {
    const provider = request.routeOptions.config.webhookProvider;
    const triggerId = (request.params as { triggerId?: string } | undefined)?.triggerId;
    request.log.warn(
      { triggerId, provider, status, reason: message, remoteAddress: request.ip },
      'webhook delivery refused; nothing was queued',
    );
    return reply.code(status).send({ error: { code, message } });
  }

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof WebhookRefusedError) {
      return refuse(request, reply, error.status, error.code, error.message);
    }
    if (error.statusCode === 413) {
      return refuse(
        request,
        reply,
        413,
        'SLW_ERR_WEBHOOK_TOO_LARGE',
        `the payload is larger than ${webhookBodyLimit} bytes`,
      );
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return refuse(request, reply, error.statusCode, 'SLW_ERR_WEBHOOK_PAYLOAD', error.message);
    }
    request.log.error({ err: error, url: request.url }, 'webhook delivery failed');
    return reply.code(500).send({
      error: { code: 'SLW_ERR_INTERNAL', message: 'internal error; the gateway log has the details' },
    });
  });

  async function receive(
    provider: TriggerProvider,
    read: DeliveryReader,
    request: FastifyRequest<{ Params: { triggerId: string } }>,
    reply: FastifyReply,
  ) {
    const { triggerId } = request.params;
    const trigger = await options.triggers.get(triggerId);
    const secret = trigger?.provider === provider ? await options.triggers.webhookSecret(triggerId) : null;
    if (!trigger || !secret) {
      return refuse(request, reply, 404, 'SLW_ERR_NOT_FOUND', `no ${provider} build trigger ${triggerId}`);
    }
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const delivery = await read(secret, body, request.headers);
    if (delivery.kind === 'ping') {
      return reply.code(200).send({ ping: 'ok', trigger: trigger.id, repository: trigger.repository });
    }
    if (delivery.kind === 'ignored') return reply.code(200).send({ skipped: delivery.reason });
    const outcome = await options.buildService.fromPush(trigger, delivery.event);
    if ('skipped' in outcome) {
      request.log.info({ triggerId, provider, reason: outcome.skipped }, 'webhook delivery builds nothing');
      return reply.code(200).send({ skipped: outcome.skipped });
    }
    const build = queuedBuild(outcome.build, options.publicUrl());
    if (!outcome.created) {
      return reply.code(200).send({
        skipped: `commit ${outcome.build.commit} is already being built by this trigger`,
        build,
      });
    }
    return reply.code(202).send(build);
  }

  for (const { path, provider, read } of webhookProviders) {
    app.post<{ Params: { triggerId: string } }>(
      `/${path}/:triggerId`,
      { bodyLimit: webhookBodyLimit, config: { webhookProvider: provider }, schema: { hide: true } },
      (request, reply) => receive(provider, read, request, reply),
    );
  }
};
