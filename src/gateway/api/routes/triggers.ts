import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, invalid, notFound, unauthenticated } from '../../../errors.ts';
import { principalName } from '../../../identity/accounts.ts';
import { requirePullRobot } from '../../../identity/pull-robots.ts';
import type { AuditKind } from '../../../identity/audit.ts';
import { cloneUrlProblem, postReceiveHookScript } from '../../../triggers/custom-git.ts';
import {
  generateSshDeployKey,
  GitLabSetupError,
  registerGitLabProject,
  unregisterGitLabProject,
  type SshDeployKeyPair,
} from '../../../triggers/gitlab-setup.ts';
import { gitlabProblem, GitLabTriggerSync } from '../../../triggers/gitlab-sync.ts';
import {
  triggerChangesSchema,
  triggerProviders,
  triggerSettingsSchema,
  wantsGeneratedDeployKey,
  type TriggerSettings,
} from '../../../triggers/trigger-settings.ts';
import type { Trigger, TriggerStore } from '../../../triggers/trigger-store.ts';
import { webhookPath } from '../../webhooks/deliveries.ts';
import { errorBody } from '../resources.ts';
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
    knownHosts: z
      .string()
      .nullable()
      .describe("the SSH server's host keys (known_hosts format) its clones accept; null: not checked"),
    refFilter: z.string().nullable(),
    dockerfile: z.string(),
    context: z.string(),
    buildArgs: z.record(z.string(), z.string()),
    tagTemplates: z.array(z.string()),
    latestOnDefaultBranch: z.boolean(),
    enabled: z.boolean(),
    pullRobot: z
      .string()
      .nullable()
      .describe(
        'the robot account whose read access builds also pull with (private base images); null for none',
      ),
    gitlab: z
      .object({
        apiUrl: z.string(),
        projectId: z.number().int(),
        projectPath: z.string(),
        hookId: z.number().int(),
        hookCreated: z
          .boolean()
          .describe('false when the project had a hook with this URL, which was updated'),
        deployKeyId: z.number().int().nullable(),
        deployKeyCreated: z.boolean().nullable(),
        tlsVerify: z.boolean(),
        tokenStored: z
          .boolean()
          .describe(
            'whether Slipway keeps the GitLab API token (sealed, never shown) to update the hook when the secret is replaced and remove what it registered when the trigger is deleted',
          ),
        hookUrl: z
          .string()
          .nullable()
          .describe(
            'the URL the hook was registered (or last synced) with; null when set up before Slipway recorded it',
          ),
        syncProblem: z
          .string()
          .nullable()
          .describe('why the last sync with GitLab failed; null once one succeeds'),
      })
      .nullable()
      .describe('for a trigger Slipway set up on GitLab: what it registered on the project; null otherwise'),
    problem: z
      .string()
      .nullable()
      .describe(
        'what keeps pushes from reaching the trigger, and what to do: its GitLab hook posts to another URL than webhookUrl (the public URL changed), or the last sync with GitLab failed; null when nothing is known to',
      ),
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
    deployKey: z
      .object({ publicKey: z.string(), fingerprint: z.string() })
      .optional()
      .describe(
        'the read-only deploy key Slipway generated and added to the GitLab project (its public half)',
      ),
    warnings: z
      .array(z.string())
      .optional()
      .describe('what went wrong on GitLab, and what to do about it by hand'),
  })
  .meta({ id: 'IssuedBuildTrigger' });

const triggerParams = z.object({ id: z.string().max(64) });

const syncedTriggerResource = triggerResource
  .extend({
    gitlabSync: z
      .object({
        hookId: z.number().int(),
        hookRecreated: z.boolean().describe('the hook was gone from the project and was added again'),
        deployKeyId: z.number().int().nullable(),
        deployKeyRecreated: z
          .boolean()
          .nullable()
          .describe('the deploy key was gone from the project and was added again; null: no deploy key'),
      })
      .describe('what the sync did on GitLab'),
  })
  .meta({ id: 'SyncedBuildTrigger' });

const gitlabSyncBody = z
  .strictObject({
    token: z
      .string()
      .min(1)
      .max(1000)
      .optional()
      .describe(
        'a new GitLab API token (api scope, Maintainer role) to sync with, kept (sealed) when GitLab accepts it; default: the one kept',
      ),
  })
  .nullish();

const deletedTriggerResource = z
  .object({
    deleted: z.string().describe('the trigger id'),
    gitlab: z
      .object({ hooksRemoved: z.number().int(), deployKeyRemoved: z.boolean() })
      .nullable()
      .describe('what was removed from the GitLab project; null when GitLab was not reached'),
    warnings: z.array(z.string()).describe('what could not be removed from GitLab, and what to do by hand'),
  })
  .meta({ id: 'DeletedBuildTrigger' });

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

  const webhookUrlOf = (trigger: Trigger) => `${publicUrl()}${webhookPath(trigger.provider, trigger.id)}`;
  const gitlabSync = new GitLabTriggerSync({ triggers, webhookUrlOf });

  const toTriggerResource = (trigger: Trigger): z.infer<typeof triggerResource> => ({
    id: trigger.id,
    repository: trigger.repository,
    provider: trigger.provider,
    webhookUrl: webhookUrlOf(trigger),
    cloneUrl: trigger.cloneUrl,
    credentials: trigger.credentials,
    knownHosts: trigger.knownHosts,
    refFilter: trigger.refFilter,
    dockerfile: trigger.dockerfile,
    context: trigger.context,
    buildArgs: trigger.buildArgs,
    tagTemplates: trigger.tagTemplates,
    latestOnDefaultBranch: trigger.latestOnDefaultBranch,
    enabled: trigger.enabled,
    pullRobot: trigger.pullRobot,
    gitlab: trigger.gitlab,
    problem: gitlabProblem(trigger, webhookUrlOf(trigger)),
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
        response: answers({ 201: issuedTriggerResource, 502: errorBody }),
      },
    },
    async (request, reply) => {
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'admin');
      const settings = request.body;
      if (settings.pullRobot) await requirePullRobot(identity, request.principal, settings.pullRobot);
      // The trigger comes first: its id is in the webhook URL GitLab is given.
      const created = await triggers.create(repository, settings, principalName(request.principal));
      let trigger = created.trigger;
      let deployKey: SshDeployKeyPair | undefined;
      if (settings.gitlab) {
        try {
          ({ trigger, deployKey } = await setUpGitLab(triggers, {
            trigger,
            settings,
            gitlab: settings.gitlab,
            webhookUrl: webhookUrlOf(trigger),
            webhookSecret: created.webhookSecret,
          }));
        } catch (error) {
          await triggers.delete(trigger.id);
          if (error instanceof GitLabSetupError) {
            return sendGitLabError(reply, error, 'GitLab was not set up, so the trigger was not created: ');
          }
          throw error;
        }
      }
      await record(request, 'setup_repo_trigger', trigger, {
        cloneUrl: trigger.cloneUrl,
        credentials: trigger.credentials?.kind ?? null,
        enabled: trigger.enabled,
        pullRobot: trigger.pullRobot,
        ...(trigger.gitlab ? { gitlab: auditedLink(trigger) } : {}),
      });
      return reply.code(201).send({
        ...toTriggerResource(trigger),
        webhookSecret: created.webhookSecret,
        ...(deployKey
          ? { deployKey: { publicKey: deployKey.publicKey, fingerprint: deployKey.fingerprint } }
          : {}),
      });
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
      const { gitlabToken, pullRobot } = request.body;
      if (pullRobot) await requirePullRobot(identity, request.principal, pullRobot);
      if (gitlabToken !== undefined && !current.gitlab) {
        throw invalid(
          `gitlabToken is for triggers Slipway set up on GitLab; build trigger ${current.id} was not set up there`,
        );
      }
      const updated = await triggers.update(current.id, request.body, principalName(request.principal));
      if (!updated) throw notFound(`build trigger ${current.id} does not exist or you cannot administer it`);
      const { credentials, enabled } = request.body;
      await record(request, 'change_repo_trigger', updated, {
        changed,
        ...(credentials !== undefined ? { credentials: credentials === null ? 'removed' : 'changed' } : {}),
        ...(enabled !== undefined ? { enabled } : {}),
        ...(pullRobot !== undefined ? { pullRobot } : {}),
        ...(gitlabToken !== undefined
          ? { gitlabToken: gitlabToken === null ? 'forgotten' : 'replaced' }
          : {}),
      });
      return toTriggerResource(updated);
    },
  );

  app.delete(
    '/triggers/:id',
    {
      schema: {
        tags: ['builds'],
        summary:
          'Delete a build trigger: its webhook is refused from now on; its builds stay. A trigger Slipway set up on GitLab answers 200 with what was removed there; what GitLab refused is a warning, the trigger is deleted all the same',
        params: triggerParams,
        response: answers({ 200: deletedTriggerResource, 204: noContent }),
      },
    },
    async (request, reply) => {
      const trigger = await triggerFor(request, request.params.id);
      const link = trigger.gitlab;
      const token = link ? await triggers.gitlabToken(trigger.id) : null;
      const deleted = await triggers.delete(trigger.id);
      if (!link) {
        if (deleted) await record(request, 'delete_repo_trigger', trigger, {});
        return reply.code(204).send(null);
      }
      const warnings: string[] = [];
      let removed: { hooksRemoved: number; deployKeyRemoved: boolean } | null = null;
      const leftOnGitLab = `webhook ${link.hookId}${
        link.deployKeyId !== null && link.deployKeyCreated ? ` and deploy key ${link.deployKeyId}` : ''
      } of ${link.projectPath} on ${link.apiUrl}`;
      if (token === null) {
        warnings.push(
          `Slipway keeps no GitLab API token for this trigger: remove ${leftOnGitLab} by hand (Settings > Webhooks, Settings > Repository > Deploy keys).`,
        );
      } else {
        try {
          removed = await unregisterGitLabProject({
            apiUrl: link.apiUrl,
            token,
            project: link.projectId,
            // The hook calls this trigger's URL only, so it goes whoever added it; a deploy key goes
            // only when Slipway added it, as the project may use a key it had for more than this.
            hookId: link.hookId,
            ...(link.deployKeyId !== null && link.deployKeyCreated ? { deployKeyId: link.deployKeyId } : {}),
          });
        } catch (error) {
          if (!(error instanceof GitLabSetupError)) throw error;
          request.log.warn({ trigger: trigger.id, reason: error.message }, 'GitLab cleanup failed');
          warnings.push(`the trigger is deleted, but ${error.message} Remove ${leftOnGitLab} by hand.`);
        }
      }
      if (deleted) {
        await record(request, 'delete_repo_trigger', trigger, {
          gitlab: { ...auditedLink(trigger), ...(removed ?? { cleanup: 'failed or skipped' }) },
        });
      }
      return reply.code(200).send({ deleted: trigger.id, gitlab: removed, warnings });
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
      // Never held up by GitLab: the secret may be replaced because it leaked.
      const webhookSecret = await triggers.replaceWebhookSecret(trigger.id);
      const warnings: string[] = [];
      let hookUpdated: boolean | undefined;
      const link = trigger.gitlab;
      if (link) {
        const token = await triggers.gitlabToken(trigger.id);
        const byHand = `set the new secret as the secret token of webhook ${link.hookId} of ${link.projectPath} on ${link.apiUrl} (Settings > Webhooks), or GitLab's pushes are refused`;
        hookUpdated = false;
        if (token === null) {
          warnings.push(`Slipway keeps no GitLab API token for this trigger: ${byHand}.`);
        } else {
          try {
            // By the hook's ID: it also follows a changed public URL, and comes back if it was deleted.
            await gitlabSync.sync(trigger);
            hookUpdated = true;
          } catch (error) {
            if (!(error instanceof GitLabSetupError)) throw error;
            request.log.warn({ trigger: trigger.id, reason: error.message }, 'GitLab hook update failed');
            warnings.push(
              `the secret is replaced, but GitLab's hook still sends the old one: ${error.message} Then ${byHand}.`,
            );
          }
        }
      }
      await record(request, 'rotate_repo_trigger_secret', trigger, {
        ...(hookUpdated !== undefined ? { gitlabHookUpdated: hookUpdated } : {}),
      });
      const current = (await triggers.get(trigger.id)) ?? trigger;
      return { ...toTriggerResource(current), webhookSecret, ...(warnings.length > 0 ? { warnings } : {}) };
    },
  );

  app.post(
    '/triggers/:id/gitlab/sync',
    {
      schema: {
        tags: ['builds'],
        summary:
          "Sync a trigger Slipway set up on GitLab: its webhook posts to the trigger's webhook URL as it is now (after a change of the public URL) with its secret, and the webhook and deploy key are added again when they were deleted in GitLab. With the kept GitLab API token, or a new one given here",
        params: triggerParams,
        body: gitlabSyncBody,
        response: answers({ 200: syncedTriggerResource, 502: errorBody }),
      },
    },
    async (request, reply) => {
      const trigger = await triggerFor(request, request.params.id);
      if (!trigger.gitlab) {
        throw invalid(
          `build trigger ${trigger.id} was not set up on GitLab by Slipway: change its webhook in GitLab by hand`,
        );
      }
      const token = request.body?.token;
      try {
        const { trigger: synced, sync } = await gitlabSync.sync(trigger, token);
        await record(request, 'change_repo_trigger', synced, {
          changed: ['gitlab'],
          gitlabSync: { ...sync, hookUrl: webhookUrlOf(synced) },
          ...(token !== undefined ? { gitlabToken: 'replaced' } : {}),
        });
        return {
          ...toTriggerResource(synced),
          gitlabSync: {
            hookId: sync.hookId,
            hookRecreated: sync.hookRecreated,
            deployKeyId: sync.deployKeyId ?? null,
            deployKeyRecreated: sync.deployKeyRecreated ?? null,
          },
        };
      } catch (error) {
        if (!(error instanceof GitLabSetupError)) throw error;
        request.log.warn({ trigger: trigger.id, reason: error.message }, 'GitLab sync failed');
        await record(request, 'change_repo_trigger', trigger, {
          changed: ['gitlab'],
          gitlabSync: 'failed',
        });
        const retry =
          error.gitlabStatus === 401 || error.gitlabStatus === 403
            ? ` Then sync again with it as token (slipway trigger gitlab-sync ${trigger.id} --gitlab-token-stdin).`
            : '';
        return sendGitLabError(reply, error, 'GitLab was not synced: ', retry);
      }
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

/** A GitLabSetupError as the answer: 400 when the user can fix it, 502 when GitLab failed; never a token. */
function sendGitLabError(reply: FastifyReply, error: GitLabSetupError, prefix: string, suffix = '') {
  return reply
    .code(error.statusCode)
    .send({ error: { code: error.code, message: `${prefix}${error.message}${suffix}` } });
}

/** What the audit log keeps of a trigger's GitLab setup: where, never the token. */
function auditedLink(trigger: Trigger) {
  const link = trigger.gitlab;
  if (!link) return null;
  return {
    apiUrl: link.apiUrl,
    project: link.projectPath,
    projectId: link.projectId,
    hookId: link.hookId,
    hookCreated: link.hookCreated,
    deployKeyId: link.deployKeyId,
    deployKeyCreated: link.deployKeyCreated,
    tokenStored: link.tokenStored,
  };
}

/**
 * Registers the webhook of a new GitLab trigger (and the deploy key it clones with, generated here) on the
 * project with the user's API token, and records what was registered, the token sealed, and the clone URL
 * (the project's when none was given). Whatever it added is removed again when a later step fails; the
 * caller deletes the trigger. Throws GitLabSetupError.
 */
async function setUpGitLab(
  triggers: TriggerStore,
  options: {
    trigger: Trigger;
    settings: TriggerSettings;
    gitlab: NonNullable<TriggerSettings['gitlab']>;
    webhookUrl: string;
    webhookSecret: string;
  },
): Promise<{ trigger: Trigger; deployKey?: SshDeployKeyPair }> {
  const { trigger, settings, gitlab, webhookUrl } = options;
  const access = { apiUrl: gitlab.apiUrl.trim(), token: gitlab.token };
  const deployKey = wantsGeneratedDeployKey(settings)
    ? generateSshDeployKey(`slipway-trigger-${trigger.id}`)
    : undefined;
  let registration;
  try {
    registration = await registerGitLabProject({
      ...access,
      project: gitlab.project,
      webhookUrl,
      webhookSecret: options.webhookSecret,
      tlsVerify: gitlab.tlsVerify,
      ...(deployKey
        ? {
            deployKey: {
              title: `Slipway build trigger ${trigger.id} (${trigger.repository})`,
              publicKey: deployKey.publicKey,
            },
          }
        : {}),
    });
  } catch (error) {
    // The hook may have been added before a later call failed; its URL is this trigger's only. Nothing
    // was added when the token or the input was refused.
    const nothingAdded =
      error instanceof GitLabSetupError &&
      (error.gitlabStatus === 401 || (error.statusCode === 400 && error.gitlabStatus === undefined));
    if (!nothingAdded) {
      await unregisterGitLabProject({ ...access, project: gitlab.project, webhookUrl }).catch(
        () => undefined,
      );
    }
    throw error;
  }
  try {
    let cloneUrl: string | undefined;
    if (settings.cloneUrl === undefined) {
      cloneUrl = deployKey ? registration.cloneUrls.ssh : registration.cloneUrls.http;
      const problem = cloneUrlProblem(cloneUrl);
      if (problem) {
        throw new GitLabSetupError(
          `GitLab gave ${registration.projectPath} the clone URL "${cloneUrl}", which Slipway cannot clone (${problem}): give cloneUrl`,
        );
      }
    }
    const updated = await triggers.setGitLab(
      trigger.id,
      {
        apiUrl: access.apiUrl,
        projectId: registration.projectId,
        projectPath: registration.projectPath,
        hookId: registration.hookId,
        hookCreated: registration.hookCreated,
        deployKeyId: registration.deployKeyId ?? null,
        deployKeyCreated: registration.deployKeyCreated ?? null,
        tlsVerify: gitlab.tlsVerify,
        hookUrl: webhookUrl,
      },
      {
        token: gitlab.token,
        ...(cloneUrl !== undefined ? { cloneUrl } : {}),
        ...(deployKey ? { deployKey: deployKey.privateKey } : {}),
      },
    );
    return { trigger: updated, ...(deployKey ? { deployKey } : {}) };
  } catch (error) {
    await unregisterGitLabProject({
      ...access,
      project: registration.projectId,
      hookId: registration.hookId,
      ...(registration.deployKeyCreated ? { deployKeyId: registration.deployKeyId } : {}),
    }).catch(() => undefined);
    throw error;
  }
}
