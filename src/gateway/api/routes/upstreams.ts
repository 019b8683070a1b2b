import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { unauthenticated } from '../../../errors.ts';
import { principalName } from '../../../identity/accounts.ts';
import type { AuditKind } from '../../../identity/audit.ts';
import { requireSuperuser } from '../../../identity/service.ts';
import type { UpstreamView } from '../../../mirror/cache/upstream-catalog.ts';
import { UpstreamError } from '../../../mirror/upstream/errors.ts';
import { byteSize, pinPattern, pullPolicy } from '../../config.ts';
import { answers, noContent, type ApiRoutes } from '../routes.ts';

const seconds = z
  .number()
  .nonnegative()
  .max(10 * 365 * 86400);
const upstreamName = z
  .string()
  .max(64)
  .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'lowercase letters, digits and . _ - between them');
const origin = z
  .url({ protocol: /^https?$/, error: 'expected the registry origin, e.g. https://registry-1.docker.io' })
  .max(2048)
  .transform((url) => new URL(url).origin);
const hosts = z
  .array(z.string().min(1).max(255).toLowerCase())
  .max(32)
  .describe('registry host names routed here by containerd `?ns=`, e.g. docker.io');
const storageBudget = byteSize.describe(
  'bytes the cached repositories may hold, e.g. 1073741824 or "50GiB"; beyond it the least recently pulled unpinned tags are evicted',
);
const pinned = z
  .array(pinPattern)
  .max(256)
  .describe('tags never evicted: tag globs ("v*") or repository:tag globs ("library/nginx:1.*")');
const staleIfDeleted = z
  .boolean()
  .describe('serve the cached copy of a tag the upstream no longer has, rather than MANIFEST_UNKNOWN');
const circuitBreaker = z
  .object({ failures: z.number().int().nonnegative().max(1000), cooldown: seconds })
  .strict()
  .describe('after `failures` failed requests in a row, pause requests for `cooldown` seconds');

const defaults = {
  hosts: [],
  tlsVerify: true,
  freshness: 300,
  staleIfError: true,
  staleIfDeleted: false,
  negativeTtl: 60,
  maxConnections: 16,
  timeout: 30,
  circuitBreaker: { failures: 5, cooldown: 30 },
  pull: 'users' as const,
  pinned: [],
};

const newUpstream = z
  .object({
    name: upstreamName.describe('also the namespace clients pull through, e.g. dockerhub'),
    url: origin,
    hosts: hosts.optional(),
    username: z.string().min(1).max(255).optional(),
    password: z.string().max(4096).optional().describe('stored sealed; never shown again'),
    tlsVerify: z.boolean().optional(),
    freshness: seconds.optional().describe('seconds a tag is trusted before it is revalidated'),
    staleIfError: z.boolean().optional(),
    staleIfDeleted: staleIfDeleted.optional(),
    negativeTtl: seconds.optional().describe('seconds an upstream "not found" is remembered'),
    maxConnections: z.number().int().positive().max(1024).optional(),
    timeout: seconds.optional().describe('seconds to wait for the upstream to start answering'),
    circuitBreaker: circuitBreaker.optional(),
    pull: pullPolicy.optional().describe('anonymous, users (any signed-in account) or org:<organization>'),
    storageBudget: storageBudget.optional(),
    pinned: pinned.optional(),
  })
  .strict()
  .refine((u) => (u.username === undefined) === (u.password === undefined), {
    message: 'give both username and password, or neither',
  });

const upstreamChanges = z
  .object({
    url: origin.optional(),
    hosts: hosts.optional(),
    username: z.string().min(1).max(255).nullable().optional(),
    password: z.string().max(4096).nullable().optional().describe('null removes the credentials'),
    tlsVerify: z.boolean().optional(),
    freshness: seconds.optional(),
    staleIfError: z.boolean().optional(),
    staleIfDeleted: staleIfDeleted.optional(),
    negativeTtl: seconds.optional(),
    maxConnections: z.number().int().positive().max(1024).optional(),
    timeout: seconds.optional(),
    circuitBreaker: circuitBreaker.optional(),
    pull: pullPolicy.optional(),
    storageBudget: storageBudget.nullable().optional().describe('null: no budget any more'),
    pinned: pinned.optional(),
  })
  .strict();

export const upstreamResource = z
  .object({
    name: z.string(),
    url: z.string(),
    hosts: z.array(z.string()),
    username: z.string().nullable(),
    hasPassword: z.boolean(),
    tlsVerify: z.boolean(),
    freshness: z.number(),
    staleIfError: z.boolean(),
    staleIfDeleted: z.boolean(),
    negativeTtl: z.number(),
    maxConnections: z.number().int(),
    timeout: z.number(),
    circuitBreaker: z.object({ failures: z.number().int(), cooldown: z.number() }),
    pull: z.string(),
    storageBudget: z.number().int().nullable().describe('bytes; null: unlimited'),
    pinned: z.array(z.string()),
    source: z.enum(['config', 'api']).describe('config: declared in the config file, read-only here'),
    circuit: z.enum(['closed', 'open', 'half-open']).describe('open: requests to it are paused'),
    rateLimit: z
      .object({
        limit: z.number().nullable(),
        remaining: z.number().nullable(),
        windowSeconds: z.number().nullable(),
        observedAt: z.iso.datetime(),
      })
      .nullable()
      .describe("the upstream's latest RateLimit-Limit and RateLimit-Remaining, when it sent any"),
    createdBy: z.string().nullable(),
    createdAt: z.iso.datetime().nullable(),
    updatedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Upstream' });

const pingResult = z.object({
  ok: z.boolean().describe('the upstream answered /v2/ and took the credentials'),
  auth: z.string().nullable().describe('how the upstream authenticates: none, basic or bearer'),
  apiVersion: z.string().nullable(),
  problem: z.string().nullable().describe('what went wrong, when it did'),
});

const nameParams = z.object({ name: z.string().max(64) });

function toResource({ upstream, stored }: UpstreamView): z.infer<typeof upstreamResource> {
  const s = upstream.settings;
  const rateLimit = upstream.client.rateLimit;
  return {
    name: s.name,
    url: s.url,
    hosts: [...s.hosts],
    username: s.username ?? null,
    hasPassword: s.password !== undefined,
    tlsVerify: s.tlsVerify,
    freshness: s.freshness,
    staleIfError: s.staleIfError,
    staleIfDeleted: s.staleIfDeleted,
    negativeTtl: s.negativeTtl,
    maxConnections: s.maxConnections,
    timeout: s.timeout,
    circuitBreaker: s.circuitBreaker,
    pull: s.pull,
    storageBudget: upstream.storageBudget,
    pinned: [...upstream.pinned],
    source: upstream.source,
    circuit: upstream.client.circuit.state,
    rateLimit: rateLimit
      ? {
          limit: rateLimit.limit?.value ?? null,
          remaining: rateLimit.remaining?.value ?? null,
          windowSeconds: rateLimit.limit?.windowSeconds ?? null,
          observedAt: rateLimit.observedAt.toISOString(),
        }
      : null,
    createdBy: stored?.createdBy ?? null,
    createdAt: stored?.createdAt.toISOString() ?? null,
    updatedAt: stored?.updatedAt.toISOString() ?? null,
  };
}

/**
 * Pull-through upstreams: any signed-in account reads them (to know what it can pull through);
 * superusers add, change and remove those not declared in the config file. Passwords are stored
 * sealed and never answered.
 */
export const upstreamRoutes: ApiRoutes = async (app, { identity, upstreams, purgeCache, contextOf }) => {
  app.addHook('onRequest', async (request) => {
    if (request.principal.kind !== 'account') throw unauthenticated('sign in to see upstreams');
  });

  function record(request: FastifyRequest, kind: AuditKind, name: string, metadata: object) {
    return identity.recordChange(request.principal, contextOf(request), {
      kind,
      namespace: name,
      target: name,
      metadata: { ...metadata },
    });
  }

  app.get(
    '/proxy/upstreams',
    {
      schema: {
        tags: ['proxy'],
        summary: 'The upstream registries Slipway caches, from the config file and the API',
        response: answers({ 200: z.object({ upstreams: z.array(upstreamResource) }) }),
      },
    },
    async () => ({ upstreams: (await upstreams.list()).map(toResource) }),
  );

  app.post(
    '/proxy/upstreams',
    {
      schema: {
        tags: ['proxy'],
        summary: 'Add an upstream (superusers); its name becomes a pull-through namespace at once',
        body: newUpstream,
        response: answers({ 201: upstreamResource }),
      },
    },
    async (request, reply) => {
      requireSuperuser(request.principal);
      const { username, password, ...rest } = request.body;
      const created = await upstreams.create(
        {
          ...defaults,
          ...rest,
          ...(username !== undefined && password !== undefined ? { username, password } : {}),
        },
        principalName(request.principal),
      );
      await record(request, 'create_proxy_upstream', created.upstream.name, {
        url: created.upstream.url,
        credentials: username !== undefined,
      });
      return reply.code(201).send(toResource(created));
    },
  );

  app.get(
    '/proxy/upstreams/:name',
    {
      schema: {
        tags: ['proxy'],
        summary: 'Read an upstream, with its circuit and rate-limit state',
        params: nameParams,
        response: answers({ 200: upstreamResource }),
      },
    },
    async (request) => toResource(await upstreams.get(request.params.name)),
  );

  app.patch(
    '/proxy/upstreams/:name',
    {
      schema: {
        tags: ['proxy'],
        summary:
          'Change an upstream (superusers); applies to the next request, on every replica within seconds',
        params: nameParams,
        body: upstreamChanges,
        response: answers({ 200: upstreamResource }),
      },
    },
    async (request) => {
      requireSuperuser(request.principal);
      const changed = await upstreams.update(request.params.name, request.body);
      const { password, ...visible } = request.body;
      await record(request, 'change_proxy_upstream', request.params.name, {
        ...visible,
        ...(password !== undefined ? { credentials: password === null ? 'removed' : 'changed' } : {}),
      });
      return toResource(changed);
    },
  );

  app.delete(
    '/proxy/upstreams/:name',
    {
      schema: {
        tags: ['proxy'],
        summary:
          'Remove an upstream (superusers); with purge=true its cached repositories go too, otherwise they stay, readable by superusers, until it is added again',
        params: nameParams,
        querystring: z.object({ purge: z.enum(['true', 'false']).optional() }),
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      requireSuperuser(request.principal);
      const { name } = request.params;
      await upstreams.delete(name);
      const purged = request.query.purge === 'true' ? await purgeCache(name) : 0;
      await record(request, 'delete_proxy_upstream', name, { purgedRepositories: purged });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/proxy/upstreams/:name/ping',
    {
      schema: {
        tags: ['proxy'],
        summary: 'Ask the upstream whether it is there and takes the credentials (superusers)',
        params: nameParams,
        response: answers({ 200: pingResult }),
      },
    },
    async (request) => {
      requireSuperuser(request.principal);
      const { upstream } = await upstreams.get(request.params.name);
      try {
        const result = await upstream.client.ping();
        return { ok: true, auth: result.auth, apiVersion: result.apiVersion ?? null, problem: null };
      } catch (error) {
        if (!(error instanceof UpstreamError)) throw error;
        return { ok: false, auth: null, apiVersion: null, problem: error.message };
      }
    },
  );
};
