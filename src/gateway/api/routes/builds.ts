import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { buildPhases, isActive, type Build } from '../../../builder/build-store.ts';
import { parseCursor } from '../../../builder/logs/entry.ts';
import { cursorForFollow } from '../../../builder/logs/sse.ts';
import { ApiError, notFound, unauthenticated } from '../../../errors.ts';
import { principalName } from '../../../identity/accounts.ts';
import { requirePullRobot } from '../../../identity/pull-robots.ts';
import { isValidTag } from '../../../registry/names.ts';
import { objectIdSchema } from '../../../triggers/push-event.ts';
import { triggerChangesSchema } from '../../../triggers/trigger-settings.ts';
import { answers, type ApiRoutes } from '../routes.ts';
import { sseHeaders, streamBuildLog } from './build-log-stream.ts';
import { repositoryOf, repositoryParams } from './repositories.ts';

const timestamp = z.iso.datetime();
const isoOrNull = (date: Date | null) => (date === null ? null : date.toISOString());

/** Where a build's log is read (JSON pages, or Server-Sent Events with Accept: text/event-stream). */
export function buildLogUrl(publicUrl: string, buildId: string): string {
  return `${publicUrl}/api/v1/builds/${buildId}/logs`;
}

const workPhaseMs = z.object({
  cloning: z.number().optional(),
  building: z.number().optional(),
  pushing: z.number().optional(),
});

export const buildResource = z
  .object({
    id: z.string(),
    repository: z.string(),
    triggerId: z
      .string()
      .nullable()
      .describe('null for a manual build without a trigger, or once it was deleted'),
    triggerKind: z.enum(['github', 'gitlab', 'git', 'manual']),
    phase: z.enum(buildPhases),
    cloneUrl: z.string(),
    ref: z.string().nullable(),
    commit: z.string().nullable().describe('null until a build of a ref was cloned'),
    dockerfile: z.string(),
    context: z.string(),
    tags: z.array(z.string()),
    digest: z.string().nullable().describe('the pushed image, once complete'),
    imageBytes: z.number().int().nullable(),
    phaseMs: workPhaseMs.describe('milliseconds spent in each phase so far'),
    error: z.string().nullable(),
    requestedBy: z.string().nullable().describe('who started it by hand; null for a push'),
    pullRobot: z.string().nullable().describe('the robot account whose read access it pulled with'),
    queuedAt: timestamp,
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
    logUrl: z.string(),
    cancelRequested: z.boolean(),
  })
  .meta({ id: 'Build' });

const logEntry = z
  .object({
    id: z.string().describe('the cursor after this entry'),
    type: z.enum(['line', 'phase', 'end', 'truncated']),
    stream: z.enum(['stdout', 'stderr']).optional(),
    text: z.string().optional(),
    phase: z.string().optional(),
    at: z.number().describe('when the builder wrote it, milliseconds since the epoch'),
  })
  .meta({ id: 'BuildLogEntry' });

const logPage = z.object({
  entries: z.array(logEntry),
  cursor: z.string().describe('pass it as ?cursor= to read on'),
  ended: z.boolean().describe('the build is over and every entry of its log has been read'),
});

const gitRef = z
  .string()
  .min(1)
  .max(255)
  .regex(/^(?!-)(?!.*\.\.)(?!.*\/$)[A-Za-z0-9._/-]+$/, 'expected a branch or tag, e.g. main or tags/v1.2')
  .describe('a branch (main, refs/heads/main) or tag (tags/v1, refs/tags/v1)');

const manualBuild = z.strictObject({
  triggerId: z
    .string()
    .max(64)
    .optional()
    .describe("build with this trigger's settings and clone credentials"),
  cloneUrl: triggerChangesSchema.shape.cloneUrl.describe(
    "what to clone; with a trigger, only the trigger's own",
  ),
  ref: gitRef.optional(),
  commit: objectIdSchema.optional().describe('the full commit SHA to build'),
  dockerfile: triggerChangesSchema.shape.dockerfile,
  context: triggerChangesSchema.shape.context,
  buildArgs: triggerChangesSchema.shape.buildArgs,
  tags: z
    .array(z.string().refine(isValidTag, 'expected a tag: letters, digits, _ . -, at most 128'))
    .min(1)
    .max(20)
    .optional()
    .describe('default: the short commit, or the branch or tag name'),
  pullRobot: triggerChangesSchema.shape.pullRobot.describe(
    "a robot account (namespace+name, of a namespace you administer) whose read access the build also pulls with; default: the trigger's; null for none",
  ),
});

const buildParams = z.object({ id: z.string().max(64) });

const wantsEventStream = (request: FastifyRequest, follow: boolean | undefined) =>
  follow === true || (request.headers.accept ?? '').includes('text/event-stream');

/**
 * Builds of a repository: started by its trigger's webhooks or by hand (write permission), read and
 * their logs followed with read permission, cancelled with write. Anyone who cannot read the repository
 * is told the build does not exist.
 */
export const buildRoutes: ApiRoutes = async (
  app,
  { identity, builds, buildService, buildLogs, publicUrl, contextOf },
) => {
  /** Followers stop when the gateway shuts down, or it would wait on their open streams. */
  const followers = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const stop of followers) stop();
  });

  const toBuildResource = (build: Build): z.infer<typeof buildResource> => ({
    id: build.id,
    repository: build.repository,
    triggerId: build.triggerId,
    triggerKind: build.triggerKind,
    phase: build.phase,
    cloneUrl: build.cloneUrl,
    ref: build.ref,
    commit: build.commit,
    dockerfile: build.dockerfile,
    context: build.context,
    tags: build.tags,
    digest: build.digest,
    imageBytes: build.imageBytes,
    phaseMs: build.phaseMs,
    error: build.error,
    requestedBy: build.requestedBy,
    pullRobot: build.pullRobot,
    queuedAt: build.queuedAt.toISOString(),
    startedAt: isoOrNull(build.startedAt),
    finishedAt: isoOrNull(build.finishedAt),
    logUrl: buildLogUrl(publicUrl(), build.id),
    cancelRequested: build.cancelRequested,
  });

  /** Refuses robots-in-a-build and anonymous callers: only accounts start and cancel builds. */
  function requireAccount(request: FastifyRequest) {
    if (request.principal.kind !== 'account')
      throw unauthenticated('sign in first: starting and cancelling builds needs write permission');
  }

  /** The build, when the caller holds `role` on its repository; 404 when it cannot read it at all. */
  async function buildFor(request: FastifyRequest, id: string, role: 'read' | 'write'): Promise<Build> {
    const hidden = () => notFound(`build ${id} does not exist or you cannot see it`);
    const build = await builds.get(id);
    if (!build) throw hidden();
    try {
      await identity.requireRole(request.principal, build.repository, 'read');
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) throw hidden();
      throw error;
    }
    if (role === 'write') await identity.requireRole(request.principal, build.repository, 'write');
    return build;
  }

  function record(
    request: FastifyRequest,
    kind: 'start_build' | 'cancel_build',
    build: Build,
    metadata: object,
  ) {
    return identity.recordChange(request.principal, contextOf(request), {
      kind,
      repository: build.repository,
      target: build.id,
      metadata: { ...metadata },
    });
  }

  app.post(
    '/repositories/:namespace/:name/builds',
    {
      schema: {
        tags: ['builds'],
        summary:
          "Start a build (write permission): of a trigger's settings at a ref or commit, or of a clone URL; a builder takes it from the queue",
        params: repositoryParams,
        body: manualBuild,
        response: answers({ 202: buildResource }),
      },
    },
    async (request, reply) => {
      requireAccount(request);
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'write');
      const { pullRobot } = request.body;
      if (pullRobot) await requirePullRobot(identity, request.principal, pullRobot);
      const build = await buildService.manual(
        { repository, ...request.body },
        principalName(request.principal),
      );
      await record(request, 'start_build', build, {
        triggerId: build.triggerId,
        cloneUrl: build.cloneUrl,
        ref: build.ref,
        commit: build.commit,
        tags: build.tags,
        pullRobot: build.pullRobot,
      });
      return reply.code(202).send(toBuildResource(build));
    },
  );

  app.get(
    '/repositories/:namespace/:name/builds',
    {
      schema: {
        tags: ['builds'],
        summary: "The repository's builds, newest first (read permission); page with before=<next>",
        params: repositoryParams,
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(500).default(50),
          before: timestamp
            .optional()
            .describe('builds queued before this time: the `next` of the last page'),
        }),
        response: answers({
          200: z.object({ builds: z.array(buildResource), next: timestamp.optional() }),
        }),
      },
    },
    async (request) => {
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'read');
      const { limit, before } = request.query;
      const found = await builds.list(repository, {
        limit,
        ...(before !== undefined ? { before: new Date(before) } : {}),
      });
      const last = found.at(-1);
      return {
        builds: found.map(toBuildResource),
        ...(found.length === limit && last ? { next: last.queuedAt.toISOString() } : {}),
      };
    },
  );

  app.get(
    '/builds/:id',
    {
      schema: {
        tags: ['builds'],
        summary: 'A build and its phase (read permission on its repository)',
        params: buildParams,
        response: answers({ 200: buildResource }),
      },
    },
    async (request) => toBuildResource(await buildFor(request, request.params.id, 'read')),
  );

  app.post(
    '/builds/:id/cancel',
    {
      schema: {
        tags: ['builds'],
        summary:
          'Cancel a build (write permission): a waiting build ends at once, a running one with its next heartbeat; 409 once it has ended',
        params: buildParams,
        response: answers({ 202: buildResource }),
      },
    },
    async (request, reply) => {
      requireAccount(request);
      const build = await buildFor(request, request.params.id, 'write');
      const cancelled = await buildService.cancel(build.id);
      await record(request, 'cancel_build', cancelled, { phase: cancelled.phase });
      return reply.code(202).send(toBuildResource(cancelled));
    },
  );

  app.get(
    '/builds/:id/logs',
    {
      schema: {
        tags: ['builds'],
        summary:
          'The build log after a cursor (read permission). With Accept: text/event-stream or follow=true: Server-Sent Events, one per entry, live until the `end` entry, resuming after Last-Event-ID',
        params: buildParams,
        querystring: z.object({
          cursor: z
            .string()
            .max(64)
            .optional()
            .describe('the `cursor` of the previous page; default: the start'),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000),
          follow: z
            .stringbool()
            .optional()
            .describe('stream Server-Sent Events, as Accept: text/event-stream does'),
        }),
        response: answers({ 200: logPage }),
      },
    },
    async (request, reply) => {
      const build = await buildFor(request, request.params.id, 'read');
      const { cursor, limit, follow } = request.query;
      if (!wantsEventStream(request, follow)) {
        const page = await buildLogs.reader.read(build.id, parseCursor(cursor), limit);
        const sawEnd = page.entries.some((entry) => entry.type === 'end');
        return { ...page, ended: sawEnd || (!isActive(build.phase) && page.entries.length < limit) };
      }
      const start = cursorForFollow(request.headers['last-event-id'], cursor);
      const aborted = new AbortController();
      const stop = () => aborted.abort();
      reply.raw.on('close', stop);
      followers.add(stop);
      reply.hijack();
      reply.raw.writeHead(200, sseHeaders);
      reply.raw.flushHeaders();
      try {
        await streamBuildLog(reply.raw, {
          reader: buildLogs.reader,
          buildId: build.id,
          cursor: start,
          phaseOf: async () => (await builds.get(build.id))?.phase ?? null,
          signal: aborted.signal,
        });
      } catch (error) {
        request.log.warn({ err: error, build: build.id }, 'following a build log failed');
        reply.raw.destroy();
      } finally {
        followers.delete(stop);
      }
    },
  );
};
