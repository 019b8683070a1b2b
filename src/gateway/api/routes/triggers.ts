import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, invalid, notFound, unauthenticated } from '../../../errors.ts';
import { principalName } from '../../../identity/accounts.ts';
import type { AuditKind } from '../../../identity/audit.ts';
import { postReceiveHookScript } from '../../../triggers/custom-git.ts';
import {
  triggerChangesSchema,
  triggerProviders,
  triggerSettingsSchema,
} from '../../../triggers/trigger-settings.ts';
import type { Trigger } from '../../../triggers/trigger-store.ts';
import { webhookPath } from '../../webhooks/deliveries.ts';
import { answers, noContent, type ApiRoutes } from '../routes.ts';
import { repositoryOf, repositoryParams } from './repositories.ts';

const timestamp = z.iso.datetime();

export const triggerResource = z
  .object({
    id: z.string(),
    repository: z.string().describe('where its builds push'),
    provider: z.enum(triggerProviders),
    webhookUrl: z.string().describe('where the git provider (or the post-receive hook) sends pushes'),
    cloneUrl: z.string(),
    credentials: z
      .union([
        z.object({ kind: z.literal('token'), username: z.string().nullable() }),
        z.object({ kind: z.literal('deploy-key') }),
      ])
      .nullable()
      .describe('how the builder clones; the token or key itself is never shown'),
    refFilter: z.string().nullable(),
    dockerfile: z.string(),
    context: z.string(),
    buildArgs: z.record(z.string(), z.string()),
    tagTemplates: z.array(z.string()),
    latestOnDefaultBranch: z.boolean(),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    failuresInARow: z.number().int(),
    createdBy: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'BuildTrigger' });

const issuedTriggerResource = triggerResource
  .extend({
    webhookSecret: z
      .string()
      .describe('what GitHub signs with, GitLab sends as its token, the hook signs with: shown this once'),
  })
  .meta({ id: 'IssuedBuildTrigger' });

const triggerParams = z.object({ id: z.string().max(64) });

/**
 * Build triggers of a repository: what turns a push to GitHub, GitLab or any git server into a build.
 * A repository's admins manage them; to anyone else a trigger does not exist. The webhook secret is
 * shown when the trigger is created or its secret replaced, never in a listing.
 */
export const triggerRoutes: ApiRoutes = async (app, { identity, triggers, publicUrl, contextOf }) => {
  app.addHook('onRequest', async (request) => {
    if (request.principal.kind !== 'account') {
      throw unauthenticated('sign in first: build triggers are for repository administrators');
    }
  });

  const toTriggerResource = (trigger: Trigger): z.infer<typeof triggerResource> => ({
    id: trigger.id,
    repository: trigger.repository,
    provider: trigger.provider,
    webhookUrl: `${publicUrl()}${webhookPath(trigger.provider, trigger.id)}`,
    cloneUrl: trigger.cloneUrl,
    credentials: trigger.credentials,
    refFilter: trigger.refFilter,
    dockerfile: trigger.dockerfile,
    context: trigger.context,
    buildArgs: trigger.buildArgs,
    tagTemplates: trigger.tagTemplates,
    latestOnDefaultBranch: trigger.latestOnDefaultBranch,
    enabled: trigger.enabled,
    disabledReason: trigger.disabledReason,
    failuresInARow: trigger.failuresInARow,
    createdBy: trigger.createdBy,
    createdAt: trigger.createdAt.toISOString(),
    updatedAt: trigger.updatedAt.toISOString(),
  });

  /** The trigger, when the caller administers its repository; otherwise 404, so it does not leak. */
  async function triggerFor(request: FastifyRequest, id: string): Promise<Trigger> {
    const hidden = () => notFound(`build trigger ${id} does not exist or you cannot administer it`);
    const trigger = await triggers.get(id);
    if (!trigger) throw hidden();
    try {
      await identity.requireRole(request.principal, trigger.repository, 'admin');
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) throw hidden();
      throw error;
    }
    return trigger;
  }

  /** Audit entries name the trigger by id and never carry a secret or credential. */
  function record(request: FastifyRequest, kind: AuditKind, trigger: Trigger, metadata: object) {
    return identity.recordChange(request.principal, contextOf(request), {
      kind,
      namespace: trigger.namespace,
      repository: trigger.repository,
      target: trigger.id,
      metadata: { provider: trigger.provider, ...metadata },
    });
  }

  app.post(
    '/repositories/:namespace/:name/triggers',
    {
      schema: {
        tags: ['builds'],
        summary:
          'Create a build trigger (repository admins); the webhook secret is in this answer only: give it and the webhook URL to the git provider',
        params: repositoryParams,
        body: triggerSettingsSchema,
        response: answers({ 201: issuedTriggerResource }),
      },
    },
    async (request, reply) => {
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'admin');
      const { trigger, webhookSecret } = await triggers.create(
        repository,
        request.body,
        principalName(request.principal),
      );
      await record(request, 'setup_repo_trigger', trigger, {
        cloneUrl: trigger.cloneUrl,
        credentials: trigger.credentials?.kind ?? null,
        enabled: trigger.enabled,
      });
      return reply.code(201).send({ ...toTriggerResource(trigger), webhookSecret });
    },
  );

  app.get(
    '/repositories/:namespace/:name/triggers',
    {
      schema: {
        tags: ['builds'],
        summary: "The repository's build triggers, oldest first (repository admins)",
        params: repositoryParams,
        response: answers({ 200: z.object({ triggers: z.array(triggerResource) }) }),
      },
    },
    async (request) => {
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'admin');
      return { triggers: (await triggers.list({ repository })).map(toTriggerResource) };
    },
  );

  app.get(
    '/triggers/:id',
    {
      schema: {
        tags: ['builds'],
        summary: 'A build trigger (never its secret or clone credentials)',
        params: triggerParams,
        response: answers({ 200: triggerResource }),
      },
    },
    async (request) => toTriggerResource(await triggerFor(request, request.params.id)),
  );

  app.patch(
    '/triggers/:id',
    {
      schema: {
        tags: ['builds'],
        summary:
          'Change a build trigger: only what is given changes; credentials null and refFilter null remove them; enabled true also forgets its failures',
        params: triggerParams,
        body: triggerChangesSchema,
        response: answers({ 200: triggerResource }),
      },
    },
    async (request) => {
      const current = await triggerFor(request, request.params.id);
      const changed = Object.keys(request.body);
      if (changed.length === 0) {
        throw invalid(`nothing to change: send any of ${Object.keys(triggerChangesSchema.shape).join(', ')}`);
      }
      const updated = await triggers.update(current.id, request.body, principalName(request.principal));
      if (!updated) throw notFound(`build trigger ${current.id} does not exist or you cannot administer it`);
      const { credentials, enabled } = request.body;
      await record(request, 'change_repo_trigger', updated, {
        changed,
        ...(credentials !== undefined ? { credentials: credentials === null ? 'removed' : 'changed' } : {}),
        ...(enabled !== undefined ? { enabled } : {}),
      });
      return toTriggerResource(updated);
    },
  );

  app.delete(
    '/triggers/:id',
    {
      schema: {
        tags: ['builds'],
        summary: 'Delete a build trigger: its webhook is refused from now on; its builds stay',
        params: triggerParams,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const trigger = await triggerFor(request, request.params.id);
      if (await triggers.delete(trigger.id)) await record(request, 'delete_repo_trigger', trigger, {});
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/triggers/:id/secret',
    {
      schema: {
        tags: ['builds'],
        summary:
          'Replace the webhook secret: deliveries signed with the old one are refused from now on; the new one is in this answer only',
        params: triggerParams,
        response: answers({ 200: issuedTriggerResource }),
      },
    },
    async (request) => {
      const trigger = await triggerFor(request, request.params.id);
      const webhookSecret = await triggers.replaceWebhookSecret(trigger.id);
      await record(request, 'rotate_repo_trigger_secret', trigger, {});
      const current = (await triggers.get(trigger.id)) ?? trigger;
      return { ...toTriggerResource(current), webhookSecret };
    },
  );

  app.get(
    '/triggers/:id/hook-script',
    {
      schema: {
        tags: ['builds'],
        summary:
          "A git post-receive hook (sh) that asks a custom-git trigger to build each pushed branch or tag. With secretEnv it reads the secret from that environment variable; without it the trigger's webhook secret is written into the script, so keep the file readable only by the git user",
        params: triggerParams,
        querystring: z.object({
          secretEnv: z
            .string()
            .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
            .max(200)
            .optional()
            .describe('the environment variable the hook reads the secret from'),
        }),
        response: answers({ 200: z.string().describe('the script, text/plain') }),
      },
    },
    async (request, reply) => {
      const trigger = await triggerFor(request, request.params.id);
      if (trigger.provider !== 'custom') {
        throw invalid(
          `build trigger ${trigger.id} takes ${trigger.provider} webhooks; hook scripts are for custom git triggers`,
        );
      }
      const { secretEnv } = request.query;
      const secret = secretEnv === undefined ? await triggers.webhookSecret(trigger.id) : null;
      const script = postReceiveHookScript({
        webhookUrl: `${publicUrl()}${webhookPath(trigger.provider, trigger.id)}`,
        secretEnvOrValue: secretEnv !== undefined ? { env: secretEnv } : { value: secret ?? '' },
        cloneUrl: trigger.cloneUrl,
      });
      return reply.type('text/plain; charset=utf-8').send(script);
    },
  );
};
