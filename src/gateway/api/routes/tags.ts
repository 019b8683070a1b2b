import { z } from 'zod';
import { forbidden } from '../../../errors.ts';
import { principalName } from '../../../identity/accounts.ts';
import { parseDigest } from '../../../registry/digest.ts';
import { parseTag } from '../../../registry/names.ts';
import { tagChangeResource, tagResource, toTagChangeResource } from '../resources.ts';
import { answers, parsedInput, type ApiRoutes } from '../routes.ts';
import { repositoryOf, repositoryParams } from './repositories.ts';

const tagParams = repositoryParams.extend({ tag: z.string().max(128) });

/** A repository's tags, each tag's history of moves, and putting a tag back on an earlier digest. */
export const tagRoutes: ApiRoutes = async (app, { identity, tagHistory, mirrorGuard, contextOf }) => {
  app.get(
    '/repositories/:namespace/:name/tags',
    {
      schema: {
        tags: ['tags'],
        summary: 'Tags with their digests, in name order; page with `last`',
        params: repositoryParams,
        querystring: z.object({
          last: z.string().max(128).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: answers({ 200: z.object({ tags: z.array(tagResource), next: z.string().optional() }) }),
      },
    },
    async (request) => {
      const repository = repositoryOf(request.params);
      await identity.requireRole(request.principal, repository, 'read');
      const { last, limit } = request.query;
      const found = await tagHistory.tags(repository, last, limit + 1);
      const page = found.slice(0, limit);
      return {
        tags: page.map((tag) => ({
          name: tag.name,
          digest: tag.digest,
          updatedAt: tag.updatedAt.toISOString(),
        })),
        ...(found.length > limit ? { next: page.at(-1)!.name } : {}),
      };
    },
  );

  app.get(
    '/repositories/:namespace/:name/tags/:tag/history',
    {
      schema: {
        tags: ['tags'],
        summary: "A tag's moves, newest first: pushes, deletions and restores, with who made them",
        params: tagParams,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
        response: answers({ 200: z.object({ history: z.array(tagChangeResource) }) }),
      },
    },
    async (request) => {
      const repository = repositoryOf(request.params);
      const tag = parsedInput(() => parseTag(request.params.tag));
      await identity.requireRole(request.principal, repository, 'read');
      const history = await tagHistory.list(repository, tag, request.query.limit);
      return { history: history.map(toTagChangeResource) };
    },
  );

  app.post(
    '/repositories/:namespace/:name/tags/:tag/restore',
    {
      schema: {
        tags: ['tags'],
        summary: 'Point the tag at an earlier digest again (writers); the manifest must still exist',
        params: tagParams,
        body: z.object({ digest: z.string().max(200) }),
        response: answers({ 200: tagResource }),
      },
    },
    async (request) => {
      const repository = repositoryOf(request.params);
      const tag = parsedInput(() => parseTag(request.params.tag));
      const digest = parsedInput(() => parseDigest(request.body.digest));
      await identity.requireRole(request.principal, repository, 'write');
      const refusal = mirrorGuard.writeRefusal(repository, principalName(request.principal));
      if (refusal !== null) throw forbidden(refusal);
      await tagHistory.restore(repository, tag, digest, { name: principalName(request.principal) });
      await identity.recordChange(request.principal, contextOf(request), {
        kind: 'restore_tag',
        repository,
        target: tag,
        metadata: { digest },
      });
      return { name: tag, digest, updatedAt: new Date().toISOString() };
    },
  );
};
