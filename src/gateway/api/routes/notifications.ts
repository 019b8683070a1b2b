import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, invalid, notFound, unauthenticated } from '../../../errors.ts';
import type { Subscription } from '../../../events/model.ts';
import { principalName } from '../../../identity/accounts.ts';
import type { AuditKind } from '../../../identity/audit.ts';
import {
  deliveryMethod,
  deliveryResource,
  deliveryStatus,
  eventKind,
  issuedSubscriptionResource,
  payloadFormat,
  subscriptionResource,
  toDeliveryResource,
  toSubscriptionResource,
} from '../resources.ts';
import { answers, noContent, type ApiRoutes } from '../routes.ts';
import { repositoryOf, repositoryParams } from './repositories.ts';

const namespaceParams = z.object({ namespace: z.string().max(255) });
const subscriptionParams = z.object({ id: z.string().max(64) });
const deliveryParams = subscriptionParams.extend({ deliveryId: z.string().max(128) });

const title = z.string().max(200);
const events = z.array(eventKind).min(1).max(50);
const filter = z
  .string()
  .max(1024)
  .nullable()
  .describe('a tag glob for repo_push and repo_tag_deleted, or a git ref regex for build events');
const url = z.string().min(1).max(2048).describe('http:// or https://; for Slack, the incoming-webhook URL');
const secret = z
  .string()
  .max(200)
  .describe('whsec_ and the base64 of 24 to 64 random bytes; webhooks only, generated when left out');

const newSubscription = z
  .object({
    events,
    method: deliveryMethod,
    url,
    secret: secret.optional(),
    filter: filter.optional(),
    title: title.optional(),
    format: payloadFormat
      .optional()
      .describe('webhooks only: standard (Standard Webhooks, the default) or cloudevents'),
  })
  .strict();

const subscriptionChanges = z
  .object({
    title: title.optional(),
    events: events.optional(),
    filter: filter.optional().describe('null or "" removes the filter'),
    url: url.optional(),
    secret: secret.optional().describe('a new whsec_ secret; the answer shows it once'),
    format: payloadFormat.optional(),
    enabled: z
      .boolean()
      .optional()
      .describe('true re-enables a disabled subscription and forgets its failures'),
  })
  .strict();

const subscriptionList = z.object({ subscriptions: z.array(subscriptionResource) });
const changedSubscription = subscriptionResource.extend({
  secret: z.string().optional().describe('the new secret, when this change set one'),
});

/**
 * Notifications: subscriptions of a repository or of a whole namespace to events, delivered to a
 * webhook or Slack, with test events, the delivery log and replays. Only administrators of what a
 * subscription is about see it: a repository's admins, or the namespace's (its user, an organization's
 * admins); to anyone else it does not exist.
 */
export const notificationRoutes: ApiRoutes = async (
  app,
  { identity, subscriptions, deliveries, contextOf },
) => {
  app.addHook('onRequest', async (request) => {
    if (request.principal.kind !== 'account') {
      throw unauthenticated('sign in first: notifications are for administrators');
    }
  });

  /** Throws unless the principal administers the scope: the repository, else the whole namespace. */
  async function requireAdminOf(
    request: FastifyRequest,
    scope: { namespace: string; repository: string | null },
  ): Promise<void> {
    if (scope.repository !== null) await identity.requireRole(request.principal, scope.repository, 'admin');
    else await identity.requireNamespaceAdmin(request.principal, scope.namespace, 'notifications');
  }

  /** The subscription, when the caller administers it; otherwise 404, so its existence does not leak. */
  async function subscriptionFor(request: FastifyRequest, id: string): Promise<Subscription> {
    const hidden = () => notFound(`subscription ${id} does not exist or you cannot see it`);
    const subscription = await subscriptions.get(id);
    if (!subscription) throw hidden();
    try {
      await requireAdminOf(request, subscription);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) throw hidden();
      throw error;
    }
    return subscription;
  }

  /** A delivery of that subscription (a delivery of another one is not found here). */
  async function deliveryFor(request: FastifyRequest, params: z.infer<typeof deliveryParams>) {
    const subscription = await subscriptionFor(request, params.id);
    const delivery = await deliveries.getDelivery(params.deliveryId);
    if (!delivery || delivery.subscriptionId !== subscription.id) {
      throw notFound(`subscription ${subscription.id} has no delivery ${params.deliveryId}`);
    }
    return delivery;
  }

  /** Audit entries name the subscription by id and never carry its URL or secret. */
  function record(
    request: FastifyRequest,
    kind: AuditKind,
    subscription: Subscription,
    metadata: Record<string, unknown>,
  ): Promise<void> {
    return identity.recordChange(request.principal, contextOf(request), {
      kind,
      namespace: subscription.namespace,
      repository: subscription.repository,
      target: subscription.id,
      metadata: { title: subscription.title, method: subscription.method, ...metadata },
    });
  }

  async function create(
    request: FastifyRequest,
    scope: { namespace: string; repository: string | null },
    body: z.infer<typeof newSubscription>,
  ): Promise<z.infer<typeof issuedSubscriptionResource>> {
    const created = await subscriptions.create({
      ...body,
      ...scope,
      createdBy: principalName(request.principal),
    });
    await record(request, 'add_repo_notification', created, {
      events: created.events,
      filter: created.filter,
      format: created.format,
    });
    return { ...toSubscriptionResource(created), secret: created.secret };
  }

  app.get(
    '/repositories/:namespace/:name/notifications',
    {
      schema: {
        tags: ['notifications'],
        summary: "The repository's own subscriptions (admins)",
        params: repositoryParams,
        response: answers({ 200: subscriptionList }),
      },
    },
    async (request) => {
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'admin');
      const found = await subscriptions.list({ namespace: request.params.namespace, repository });
      return { subscriptions: found.map(toSubscriptionResource) };
    },
  );

  app.post(
    '/repositories/:namespace/:name/notifications',
    {
      schema: {
        tags: ['notifications'],
        summary:
          "Subscribe a webhook or Slack to the repository's events (admins); the secret is in this answer only",
        params: repositoryParams,
        body: newSubscription,
        response: answers({ 201: issuedSubscriptionResource }),
      },
    },
    async (request, reply) => {
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'admin');
      const scope = { namespace: request.params.namespace, repository };
      return reply.code(201).send(await create(request, scope, request.body));
    },
  );

  app.get(
    '/namespaces/:namespace/notifications',
    {
      schema: {
        tags: ['notifications'],
        summary:
          "A user's or organization's subscriptions: those of the whole namespace (repository null) and of each of its repositories (its user, the organization's admins)",
        params: namespaceParams,
        response: answers({ 200: subscriptionList }),
      },
    },
    async (request) => {
      const { namespace } = request.params;
      await identity.requireNamespaceAdmin(request.principal, namespace, 'notifications');
      return { subscriptions: (await subscriptions.list({ namespace })).map(toSubscriptionResource) };
    },
  );

  app.post(
    '/namespaces/:namespace/notifications',
    {
      schema: {
        tags: ['notifications'],
        summary:
          "Subscribe to the events of every repository of a user or organization (its user, the organization's admins); the secret is in this answer only",
        params: namespaceParams,
        body: newSubscription,
        response: answers({ 201: issuedSubscriptionResource }),
      },
    },
    async (request, reply) => {
      const { namespace } = request.params;
      await identity.requireNamespaceAdmin(request.principal, namespace, 'notifications');
      return reply.code(201).send(await create(request, { namespace, repository: null }, request.body));
    },
  );

  app.get(
    '/notifications/:id',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Read a subscription (never its secret)',
        params: subscriptionParams,
        response: answers({ 200: subscriptionResource }),
      },
    },
    async (request) => toSubscriptionResource(await subscriptionFor(request, request.params.id)),
  );

  app.patch(
    '/notifications/:id',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Change a subscription; enabled: true re-enables one Slipway disabled after failures',
        params: subscriptionParams,
        body: subscriptionChanges,
        response: answers({ 200: changedSubscription }),
      },
    },
    async (request) => {
      const current = await subscriptionFor(request, request.params.id);
      const changed = Object.keys(request.body);
      if (changed.length === 0) {
        throw invalid('nothing to change: send title, events, filter, url, secret, format or enabled');
      }
      const updated = await subscriptions.update(current.id, request.body);
      await record(request, 'change_repo_notification', updated, {
        changed,
        ...(request.body.enabled !== undefined ? { enabled: request.body.enabled } : {}),
      });
      return {
        ...toSubscriptionResource(updated),
        ...(request.body.secret !== undefined && updated.secret !== null ? { secret: updated.secret } : {}),
      };
    },
  );

  app.delete(
    '/notifications/:id',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Delete a subscription; deliveries still queued for it are skipped',
        params: subscriptionParams,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const subscription = await subscriptionFor(request, request.params.id);
      if (await subscriptions.delete(subscription.id)) {
        await record(request, 'delete_repo_notification', subscription, {});
      }
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/notifications/:id/test',
    {
      schema: {
        tags: ['notifications'],
        summary:
          'Send a sample of the first event kind (marked test: true) to this subscription alone; answers with its queued delivery',
        params: subscriptionParams,
        response: answers({ 202: deliveryResource }),
      },
    },
    async (request, reply) => {
      const subscription = await subscriptionFor(request, request.params.id);
      return reply.code(202).send(toDeliveryResource(await deliveries.sendTest(subscription.id)));
    },
  );

  app.get(
    '/notifications/:id/deliveries',
    {
      schema: {
        tags: ['notifications'],
        summary: "The subscription's deliveries with each attempt, newest first; page with `before`",
        params: subscriptionParams,
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(100).default(20),
          before: z.string().max(200).optional().describe('the `next` of the previous page'),
          status: deliveryStatus.optional(),
        }),
        response: answers({
          200: z.object({ deliveries: z.array(deliveryResource), next: z.string().optional() }),
        }),
      },
    },
    async (request) => {
      const subscription = await subscriptionFor(request, request.params.id);
      const { limit, before, status } = request.query;
      const page = await deliveries.listDeliveries(subscription.id, {
        limit,
        ...(before ? { before } : {}),
        ...(status ? { status } : {}),
      });
      return {
        deliveries: page.items.map(toDeliveryResource),
        ...(page.next !== undefined ? { next: page.next } : {}),
      };
    },
  );

  app.get(
    '/notifications/:id/deliveries/:deliveryId',
    {
      schema: {
        tags: ['notifications'],
        summary: 'One delivery with its attempts and the event it carries',
        params: deliveryParams,
        response: answers({ 200: deliveryResource }),
      },
    },
    async (request) => toDeliveryResource(await deliveryFor(request, request.params)),
  );

  app.post(
    '/notifications/:id/deliveries/:deliveryId/replay',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Send a delivery again, whatever its status, with the same id (webhook-id) and payload',
        params: deliveryParams,
        response: answers({ 202: deliveryResource }),
      },
    },
    async (request, reply) => {
      const delivery = await deliveryFor(request, request.params);
      return reply.code(202).send(toDeliveryResource(await deliveries.replay(delivery.id)));
    },
  );
};
