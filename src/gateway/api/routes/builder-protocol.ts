import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { conflict, unauthenticated } from '../../../errors.ts';
import { sameSecret } from '../../../identity/secrets.ts';
import { toBuilderAssignment, type BuilderHello } from '../../../builder/build-control.ts';
import type { BuildService } from '../../../builder/build-service.ts';
import { answers, noContent } from '../routes.ts';

export interface BuilderProtocolOptions {
  /** builds.builderSecret; without it the routes are not there (404). */
  secret: string | undefined;
  buildService: Pick<BuildService, 'claim' | 'heartbeat' | 'phase' | 'finish'>;
  hello: () => BuilderHello;
}

const workPhase = z.enum(['cloning', 'building', 'pushing']);
const phaseMs = z.partialRecord(workPhase, z.number().int().nonnegative());
const builderName = z.string().min(1).max(200);
const buildParams = z.object({ id: z.uuid() });

const helloResource = z.object({
  queuePrefix: z.string(),
  logKeyPrefix: z.string(),
  registry: z.string(),
  registryTls: z.boolean(),
});

const assignmentResource = z.object({
  build: z.object({
    id: z.string(),
    repository: z.string(),
    triggerId: z.string().nullable(),
    cloneUrl: z.string(),
    ref: z.string().nullable(),
    commit: z.string().nullable(),
    dockerfile: z.string(),
    context: z.string(),
    buildArgs: z.record(z.string(), z.string()),
    tags: z.array(z.string()),
  }),
  clone: z.object({
    username: z.string().optional(),
    token: z.string().optional(),
    deployKey: z.string().optional(),
    knownHosts: z.string().optional(),
  }),
  destinations: z.array(z.string()),
  registry: z.string(),
  push: z.object({ username: z.string(), token: z.string() }),
  deadline: z.iso.datetime(),
  heartbeatSeconds: z.number().int().positive(),
});

const buildEnd = z.object({
  phase: z.enum(['complete', 'error', 'cancelled', 'timeout', 'internal_error']),
  error: z
    .string()
    .max(64 * 1024)
    .optional(),
  digest: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/)
    .optional(),
  imageBytes: z.number().int().nonnegative().optional(),
  commit: z
    .string()
    .regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/)
    .optional(),
  phaseMs: phaseMs.optional(),
});

const lost = (id: string) => conflict(`this builder does not hold build ${id} (it ended, or was swept)`);

/**
 * The builder protocol under /api/v1/builder: builders authenticate with the shared builder secret
 * (`Authorization: Bearer …`), not as a user. 409 tells a builder it no longer holds the build.
 */
export const builderProtocolRoutes: FastifyPluginAsyncZod<BuilderProtocolOptions> = async (
  app,
  { secret, buildService, hello },
) => {
  if (!secret) return;
  app.addHook('onRequest', async (request) => {
    if (!sameSecret(request.headers.authorization ?? '', `Bearer ${secret}`)) {
      throw unauthenticated('builders authenticate with Authorization: Bearer <builds.builderSecret>');
    }
  });
  const config = { skipAuthentication: true };
  const tags = ['builder protocol'];

  app.get(
    '/hello',
    {
      config,
      schema: {
        tags,
        summary: 'Where a builder finds its jobs and log streams, and the registry it pushes to',
        response: answers({ 200: helloResource }),
      },
    },
    () => hello(),
  );

  app.post(
    '/builds/:id/claim',
    {
      config,
      schema: {
        tags,
        summary: 'Take a waiting build: its settings and push credentials; 409 when it is not waiting',
        params: buildParams,
        body: z.object({ builder: builderName }),
        response: answers({ 200: assignmentResource }),
      },
    },
    async (request) => {
      const assignment = await buildService.claim(request.params.id, request.body.builder);
      if (!assignment) throw conflict(`build ${request.params.id} is not waiting for a builder`);
      return toBuilderAssignment(assignment);
    },
  );

  app.post(
    '/builds/:id/heartbeat',
    {
      config,
      schema: {
        tags,
        summary: "Renew the builder's claim; answers whether the build was cancelled",
        params: buildParams,
        body: z.object({ builder: builderName }),
        response: answers({ 200: z.object({ cancel: z.boolean() }) }),
      },
    },
    async (request) => {
      const answer = await buildService.heartbeat(request.params.id, request.body.builder);
      if (!answer) throw lost(request.params.id);
      return answer;
    },
  );

  app.post(
    '/builds/:id/phase',
    {
      config,
      schema: {
        tags,
        summary: 'The build moved on to a phase, with the milliseconds the phases so far took',
        params: buildParams,
        body: z.object({ builder: builderName, phase: workPhase, phaseMs: phaseMs.default({}) }),
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const { builder, phase, phaseMs: ms } = request.body;
      if (!(await buildService.phase(request.params.id, builder, phase, ms))) throw lost(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/builds/:id/finish',
    {
      config,
      schema: {
        tags,
        summary: 'The build ended: its result, or why it failed',
        params: buildParams,
        body: z.object({ builder: builderName, end: buildEnd }),
        response: answers({ 200: z.object({ phase: z.string() }) }),
      },
    },
    async (request) => {
      const build = await buildService.finish(request.params.id, request.body.builder, request.body.end);
      if (!build) throw lost(request.params.id);
      return { phase: build.phase };
    },
  );
};
