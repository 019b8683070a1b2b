import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, conflict, invalid, notFound, unauthenticated } from '../../../errors.ts';
import { principalName } from '../../../identity/accounts.ts';
import type { AuditKind } from '../../../identity/audit.ts';
import { namespaceOf } from '../../../identity/names.ts';
import { parseRepositoryName } from '../../../registry/names.ts';
import {
  mirrorChangesSchema,
  mirrorScheduleSchema,
  mirrorSettingsSchema,
  mirrorStates,
  type MirrorSettings,
} from '../../../mirror/sync/mirror-settings.ts';
import { mirrorRunStates, type MirrorRun } from '../../../mirror/sync/mirror-runner.ts';
import type { Mirror, NewMirror } from '../../../mirror/sync/mirror-store.ts';
import { tagOutcomes } from '../../../mirror/sync/sync-result.ts';
import { platformSelectionSchema } from '../../../mirror/sync/platform-selector.ts';
import { importSkopeoSyncFile } from '../../../mirror/sync/skopeo-sync-file.ts';
import { answers, noContent, parsedInput, type ApiRoutes } from '../routes.ts';
import { repositoryOf, repositoryParams } from './repositories.ts';

const timestamp = z.iso.datetime();
const isoOrNull = (date: Date | null) => (date === null ? null : date.toISOString());

export const mirrorResource = z
  .object({
    repository: z.string().describe('the local repository, read-only to all but the robot'),
    namespace: z.string(),
    upstream: z.object({
      url: z.string(),
      repository: z.string(),
      username: z.string().nullable(),
      hasPassword: z.boolean().describe('the password itself is never shown'),
      tlsVerify: z.boolean(),
    }),
    filter: z.object({
      include: z.array(z.string()),
      exclude: z.array(z.string()),
      regex: z.array(z.string()),
      semver: z.string().optional(),
      includePrerelease: z.boolean(),
      newest: z.number().int().optional(),
    }),
    platforms: z.union([z.literal('all'), z.array(z.string())]),
    schedule: z
      .object({ interval: z.number().optional(), cron: z.string().optional() })
      .describe('interval: seconds between syncs; cron: a five-field expression in UTC'),
    startAt: timestamp.nullable(),
    enabled: z.boolean(),
    deleteMissing: z.boolean(),
    maxDeletions: z.number().int(),
    robot: z.string().nullable().describe('null once its robot was deleted: set another'),
    concurrency: z.number().int(),
    bandwidthLimit: z.number().int().nullable().describe('bytes per second; null: unlimited'),
    state: z.enum(mirrorStates),
    lastRunAt: timestamp.nullable(),
    nextRunAt: timestamp.nullable().describe('null while disabled'),
    createdBy: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Mirror' });

export const toMirrorResource = (mirror: Mirror): z.infer<typeof mirrorResource> => ({
  repository: mirror.repository,
  namespace: mirror.namespace,
  upstream: { ...mirror.upstream },
  filter: mirror.filter,
  platforms: mirror.platforms,
  schedule: mirror.schedule,
  startAt: isoOrNull(mirror.startAt),
  enabled: mirror.enabled,
  deleteMissing: mirror.deleteMissing,
  maxDeletions: mirror.maxDeletions,
  robot: mirror.robot,
  concurrency: mirror.concurrency,
  bandwidthLimit: mirror.bandwidthLimit,
  state: mirror.state,
  lastRunAt: isoOrNull(mirror.lastRunAt),
  nextRunAt: isoOrNull(mirror.nextRunAt),
  createdBy: mirror.createdBy,
  createdAt: mirror.createdAt.toISOString(),
  updatedAt: mirror.updatedAt.toISOString(),
});

const tagOutcome = z.enum(tagOutcomes);

export const mirrorRunResource = z
  .object({
    id: z.number().int(),
    repository: z.string(),
    trigger: z.enum(['schedule', 'manual']),
    state: z.enum(mirrorRunStates),
    dryRun: z.boolean().describe('only compared digests: changed nothing'),
    startedAt: timestamp.describe('when it started; while queued, when it was asked for'),
    finishedAt: timestamp.nullable(),
    cancelRequested: z.boolean(),
    totals: z.record(tagOutcome, z.number().int()).describe('tags per outcome'),
    bytesCopied: z.number().int().describe('bytes downloaded from the upstream'),
    error: z.string().nullable().describe('why it failed'),
  })
  .meta({ id: 'MirrorRun' });

export const mirrorRunDetailsResource = mirrorRunResource
  .extend({
    tags: z
      .array(
        z.object({
          tag: z.string(),
          outcome: tagOutcome,
          digest: z.string().optional(),
          reason: z.string().optional().describe('why it was skipped or failed'),
          bytes: z.number().int().optional(),
        }),
      )
      .describe('what the run did with each tag, in the order it happened'),
  })
  .meta({ id: 'MirrorRunDetails' });

export const toMirrorRunResource = (run: MirrorRun): z.infer<typeof mirrorRunResource> => ({
  id: run.id,
  repository: run.repository,
  trigger: run.trigger,
  state: run.state,
  dryRun: run.dryRun,
  startedAt: run.startedAt.toISOString(),
  finishedAt: isoOrNull(run.finishedAt),
  cancelRequested: run.cancelRequested,
  totals: run.totals,
  bytesCopied: run.bytesCopied,
  error: run.error,
});

const runParams = repositoryParams.extend({ run: z.coerce.number().int().positive() });

const newMirror = mirrorSettingsSchema.extend({
  repository: z.string().max(255).describe('the local repository, e.g. acme/nginx; created when missing'),
});

const importRequest = z.strictObject({
  namespace: z.string().max(64).describe('each mirror is NAMESPACE/<upstream repository>'),
  file: z.string().max(60_000).describe('the YAML file of skopeo sync --src yaml'),
  robot: z.string().min(1).max(200).describe('a robot of the namespace, which every mirror writes as'),
  platforms: platformSelectionSchema.optional().describe('the platforms every mirror keeps; default all'),
  schedule: mirrorScheduleSchema.optional(),
});

const importWarning = z.object({
  path: z.string().describe('where in the file, e.g. "quay.io"."cert-dir"'),
  message: z.string(),
});

const mirrorList = z.object({ mirrors: z.array(mirrorResource) });

/**
 * Repository mirrors: a repository filled from an upstream registry's repository on a schedule, by a
 * robot of its namespace. The namespace's administrators (its user, an organization's admins,
 * superusers) manage them; to anyone else a mirror does not exist. Passwords are sealed, never shown.
 */
export const mirrorRoutes: ApiRoutes = async (
  app,
  { identity, mirrors, mirrorGuard, mirrorRunner, mirrorQueue, contextOf },
) => {
  app.addHook('onRequest', async (request) => {
    if (request.principal.kind !== 'account') {
      throw unauthenticated('sign in first: mirrors are for administrators');
    }
  });

  const hidden = (repository: string) =>
    notFound(`${repository} is not a mirror, or you cannot administer its namespace`);

  /** Whether the caller administers the namespace (403 and 404 mean no). */
  async function administers(request: FastifyRequest, namespace: string): Promise<boolean> {
    try {
      await identity.requireNamespaceAdmin(request.principal, namespace, 'mirrors');
      return true;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) return false;
      throw error;
    }
  }

  /** The mirror, when the caller administers its namespace; otherwise 404, so it does not leak. */
  async function mirrorFor(request: FastifyRequest, repository: string): Promise<Mirror> {
    const mirror = await mirrors.get(repository);
    if (!mirror || !(await administers(request, mirror.namespace))) throw hidden(repository);
    return mirror;
  }

  function record(request: FastifyRequest, kind: AuditKind, repository: string, metadata: object) {
    return identity.recordChange(request.principal, contextOf(request), {
      kind,
      repository,
      target: repository,
      metadata: { ...metadata },
    });
  }

  /**
   * Brings the mirror's job scheduler in line with its settings; the mirror with its next run. When
   * Redis cannot be reached, the workers bring it in line later (they do every few minutes).
   */
  async function scheduled(request: FastifyRequest, mirror: Mirror): Promise<Mirror> {
    try {
      const nextRunAt = await mirrorQueue.schedule(mirror);
      await mirrors.setNextRun(mirror.id, nextRunAt);
      return { ...mirror, nextRunAt };
    } catch (error) {
      request.log.warn(
        { err: error, repository: mirror.repository },
        'could not schedule the mirror now; the workers will',
      );
      return mirror;
    }
  }

  /** The robot needs write on the repository for its pushes; granted unless it has it already. */
  async function grantRobotWrite(request: FastifyRequest, repository: string, robot: string | null) {
    if (robot === null) return;
    const permissions = await identity.listPermissions(request.principal, repository);
    const held = permissions.find((entry) => entry.kind !== 'team' && entry.name === robot);
    if (held?.role === 'write' || held?.role === 'admin') return;
    await identity.setPermission(
      request.principal,
      repository,
      { kind: 'account', name: robot },
      'write',
      contextOf(request),
    );
  }

  /** Creates the mirrors (all or none), then audits them and grants their robot write. */
  async function create(request: FastifyRequest, entries: NewMirror[], via: 'api' | 'import') {
    const created = await mirrors.create(entries, principalName(request.principal));
    await mirrorGuard.refresh();
    for (const { mirror, repositoryCreated } of created) {
      if (repositoryCreated) {
        await record(request, 'create_repo', mirror.repository, { visibility: 'private', via: 'mirror' });
      }
      await record(request, 'create_repo_mirror', mirror.repository, {
        upstream: `${mirror.upstream.url}/${mirror.upstream.repository}`,
        robot: mirror.robot,
        credentials: mirror.upstream.hasPassword,
        via,
      });
      await grantRobotWrite(request, mirror.repository, mirror.robot);
    }
    const shown: Mirror[] = [];
    for (const { mirror } of created) shown.push(await scheduled(request, mirror));
    return shown;
  }

  app.get(
    '/mirrors',
    {
      schema: {
        tags: ['mirrors'],
        summary: 'The mirrors of the namespaces you administer, in repository name order',
        querystring: z.object({ namespace: z.string().max(64).optional() }),
        response: answers({ 200: mirrorList }),
      },
    },
    async (request) => {
      const { namespace } = request.query;
      if (namespace !== undefined) {
        await identity.requireNamespaceAdmin(request.principal, namespace, 'mirrors');
        return { mirrors: (await mirrors.list({ namespace })).map(toMirrorResource) };
      }
      const allowed = new Map<string, boolean>();
      const shown: Mirror[] = [];
      for (const mirror of await mirrors.list()) {
        if (!allowed.has(mirror.namespace)) {
          allowed.set(mirror.namespace, await administers(request, mirror.namespace));
        }
        if (allowed.get(mirror.namespace)) shown.push(mirror);
      }
      return { mirrors: shown.map(toMirrorResource) };
    },
  );

  app.post(
    '/mirrors',
    {
      schema: {
        tags: ['mirrors'],
        summary:
          'Mirror an upstream repository into a repository of a namespace you administer (created when missing); its robot is granted write, and nobody else may push there',
        body: newMirror,
        response: answers({ 201: mirrorResource }),
      },
    },
    async (request, reply) => {
      const { repository: name, ...settings } = request.body;
      const repository = parsedInput(() => parseRepositoryName(name));
      const namespace = namespaceOf(repository);
      if (!namespace) throw invalid(`repository names are <namespace>/<name>, not "${name}"`);
      await identity.requireNamespaceAdmin(request.principal, namespace, 'mirrors');
      const [mirror] = await create(request, [{ repository, settings }], 'api');
      return reply.code(201).send(toMirrorResource(mirror!));
    },
  );

  app.post(
    '/mirrors/import',
    {
      schema: {
        tags: ['mirrors'],
        summary:
          'Turn a skopeo sync YAML file into mirrors of a namespace you administer: all of them, or none when any is a mirror already; what a mirror cannot do is answered as warnings',
        body: importRequest,
        response: answers({
          201: z.object({ mirrors: z.array(mirrorResource), warnings: z.array(importWarning) }),
        }),
      },
    },
    async (request, reply) => {
      const { namespace, file, robot, platforms, schedule } = request.body;
      await identity.requireNamespaceAdmin(request.principal, namespace, 'mirrors');
      const imported = importSkopeoSyncFile(file, {
        namespace,
        source: 'file',
        ...(platforms !== undefined ? { platforms } : {}),
      });
      const entries = imported.mirrors.map((definition): NewMirror => {
        const { credentials, ...upstream } = definition.upstream;
        const settings: MirrorSettings = mirrorSettingsSchema.parse({
          upstream: { ...upstream, ...credentials },
          robot,
        });
        return {
          repository: definition.name,
          settings: {
            ...settings,
            filter: definition.filter,
            platforms: definition.platforms,
            ...(schedule !== undefined ? { schedule } : {}),
          },
        };
      });
      const created = entries.length > 0 ? await create(request, entries, 'import') : [];
      return reply.code(201).send({ mirrors: created.map(toMirrorResource), warnings: imported.warnings });
    },
  );

  app.get(
    '/mirrors/:namespace/:name',
    {
      schema: {
        tags: ['mirrors'],
        summary: "Read a repository's mirror settings and status (never its password)",
        params: repositoryParams,
        response: answers({ 200: mirrorResource }),
      },
    },
    async (request) => toMirrorResource(await mirrorFor(request, repositoryOf(request.params))),
  );

  app.patch(
    '/mirrors/:namespace/:name',
    {
      schema: {
        tags: ['mirrors'],
        summary:
          'Change a mirror: only what is given changes; upstream.password null removes the credentials',
        params: repositoryParams,
        body: mirrorChangesSchema,
        response: answers({ 200: mirrorResource }),
      },
    },
    async (request) => {
      const current = await mirrorFor(request, repositoryOf(request.params));
      const changed = Object.keys(request.body);
      if (changed.length === 0) {
        throw invalid(`nothing to change: send any of ${Object.keys(mirrorChangesSchema.shape).join(', ')}`);
      }
      const updated = await mirrors.update(current.repository, request.body);
      if (!updated) throw hidden(current.repository);
      await mirrorGuard.refresh();
      const password = request.body.upstream?.password;
      await record(request, 'change_repo_mirror', updated.repository, {
        changed,
        ...(password !== undefined ? { credentials: password === null ? 'removed' : 'changed' } : {}),
        ...(request.body.enabled !== undefined ? { enabled: request.body.enabled } : {}),
        ...(request.body.robot !== undefined ? { robot: updated.robot } : {}),
      });
      if (request.body.robot !== undefined) await grantRobotWrite(request, updated.repository, updated.robot);
      return toMirrorResource(await scheduled(request, updated));
    },
  );

  app.delete(
    '/mirrors/:namespace/:name',
    {
      schema: {
        tags: ['mirrors'],
        summary:
          'Stop mirroring: the repository keeps its tags and becomes writable by those with write permission',
        params: repositoryParams,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const mirror = await mirrorFor(request, repositoryOf(request.params));
      if (await mirrors.delete(mirror.repository)) {
        await mirrorGuard.refresh();
        await mirrorQueue.unschedule(mirror.id).catch((error: unknown) => {
          request.log.warn({ err: error }, 'could not remove the mirror schedule now; the workers will');
        });
        await record(request, 'delete_repo_mirror', mirror.repository, {
          upstream: `${mirror.upstream.url}/${mirror.upstream.repository}`,
        });
      }
      return reply.code(204).send(null);
    },
  );
  app.post(
    '/mirrors/:namespace/:name/sync',
    {
      schema: {
        tags: ['mirrors'],
        summary:
          'Sync now: queues a run for a worker to start (409 while one is queued or syncing); dryRun only records what a sync would copy, skip and delete',
        params: repositoryParams,
        body: z.strictObject({ dryRun: z.boolean().default(false) }).prefault({}),
        response: answers({ 202: mirrorRunResource }),
      },
    },
    async (request, reply) => {
      const mirror = await mirrorFor(request, repositoryOf(request.params));
      const { dryRun } = request.body;
      const run = await mirrorRunner.enqueue(mirror.repository, { trigger: 'manual', dryRun });
      await mirrorQueue.startRun(run.id).catch(async (error: unknown) => {
        await mirrorRunner.cancel(mirror.repository);
        throw error;
      });
      await record(request, 'sync_repo_mirror', mirror.repository, { run: run.id, dryRun });
      return reply.code(202).send(toMirrorRunResource(run));
    },
  );

  app.post(
    '/mirrors/:namespace/:name/cancel',
    {
      schema: {
        tags: ['mirrors'],
        summary:
          'Cancel the run under way: a queued run ends at once, a syncing one within about a second (409 when none is under way)',
        params: repositoryParams,
        response: answers({ 202: mirrorRunResource }),
      },
    },
    async (request, reply) => {
      const mirror = await mirrorFor(request, repositoryOf(request.params));
      const runId = await mirrorRunner.cancel(mirror.repository);
      if (runId === null) throw conflict(`${mirror.repository} has no sync under way`);
      await record(request, 'cancel_repo_mirror_sync', mirror.repository, { run: runId });
      return reply.code(202).send(toMirrorRunResource((await mirrorRunner.runDetails(runId))!));
    },
  );

  app.get(
    '/mirrors/:namespace/:name/runs',
    {
      schema: {
        tags: ['mirrors'],
        summary: "The mirror's latest runs, newest first",
        params: repositoryParams,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(20) }),
        response: answers({ 200: z.object({ runs: z.array(mirrorRunResource) }) }),
      },
    },
    async (request) => {
      const mirror = await mirrorFor(request, repositoryOf(request.params));
      const runs = await mirrorRunner.history(mirror.repository, request.query.limit);
      return { runs: runs.map(toMirrorRunResource) };
    },
  );

  app.get(
    '/mirrors/:namespace/:name/runs/:run',
    {
      schema: {
        tags: ['mirrors'],
        summary: 'A run of the mirror, with what it did with each tag (so far, while it runs)',
        params: runParams,
        response: answers({ 200: mirrorRunDetailsResource }),
      },
    },
    async (request) => {
      const mirror = await mirrorFor(request, repositoryOf(request.params));
      const run = await mirrorRunner.runDetails(request.params.run);
      if (!run || run.repository !== mirror.repository) {
        throw notFound(`${mirror.repository} has no run ${request.params.run}`);
      }
      return { ...toMirrorRunResource(run), tags: run.tags };
    },
  );
};
