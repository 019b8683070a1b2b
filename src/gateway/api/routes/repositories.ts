import { z } from 'zod';
import { invalid } from '../../../errors.ts';
import { parseRepositoryName, type RepositoryName } from '../../../registry/names.ts';
import {
  granteeKind,
  permissionResource,
  repositoryResource,
  repositoryRole,
  toPermissionResource,
  toRepositoryResource,
  visibility,
} from '../resources.ts';
import { answers, noContent, parsedInput, type ApiRoutes } from '../routes.ts';

/**
 * `/repositories/:namespace/:name`: a repository's name is its namespace and the rest, the rest
 * URL-encoded when it has slashes (`acme/team/app` is `/repositories/acme/team%2Fapp`).
 */
export const repositoryParams = z.object({ namespace: z.string().max(255), name: z.string().max(255) });

export function repositoryOf(params: { namespace: string; name: string }): RepositoryName {
  return parsedInput(() => parseRepositoryName(`${params.namespace}/${params.name}`));
}

const pageSize = z.coerce.number().int().min(1).max(1000).default(100);
const grantee = repositoryParams.extend({ kind: granteeKind, grantee: z.string().max(255) });
const granteeOf = (params: z.infer<typeof grantee>) => ({
  kind: params.kind === 'team' ? ('team' as const) : ('account' as const),
  name: params.grantee,
});

/** Repositories: create, list what you can read, visibility, deletion and permissions. */
export const repositoryRoutes: ApiRoutes = async (app, { identity, contextOf }) => {
  app.get(
    '/repositories',
    {
      schema: {
        tags: ['repositories'],
        summary: 'Repositories you can read, in name order; page with `last`',
        querystring: z.object({
          namespace: z.string().max(255).optional(),
          public: z.stringbool().optional().describe('only public repositories'),
          last: z.string().max(255).optional(),
          limit: pageSize,
        }),
        response: answers({
          200: z.object({ repositories: z.array(repositoryResource), next: z.string().optional() }),
        }),
      },
    },
    async (request) => {
      const { namespace, last, limit } = request.query;
      const found = await identity.listRepositories(request.principal, {
        limit: limit + 1,
        ...(namespace ? { namespace } : {}),
        ...(last ? { last } : {}),
        ...(request.query.public ? { publicOnly: true } : {}),
      });
      const page = found.slice(0, limit);
      return {
        repositories: page.map(toRepositoryResource),
        ...(found.length > limit ? { next: page.at(-1)!.name } : {}),
      };
    },
  );

  app.post(
    '/repositories',
    {
      schema: {
        tags: ['repositories'],
        summary: 'Create an empty repository in a namespace where you may create',
        body: z.object({ name: z.string().max(255), visibility: visibility.optional() }),
        response: answers({ 201: repositoryResource }),
      },
    },
    async (request, reply) => {
      const name = repositoryOf(splitName(request.body.name));
      const created = await identity.createRepository(
        request.principal,
        name,
        request.body.visibility,
        contextOf(request),
      );
      return reply.code(201).send(toRepositoryResource(created));
    },
  );

  app.get(
    '/repositories/:namespace/:name',
    {
      schema: {
        tags: ['repositories'],
        summary: 'Read a repository and your role on it',
        params: repositoryParams,
        response: answers({ 200: repositoryResource }),
      },
    },
    async (request) =>
      toRepositoryResource(await identity.getRepository(request.principal, repositoryOf(request.params))),
  );

  app.patch(
    '/repositories/:namespace/:name',
    {
      schema: {
        tags: ['repositories'],
        summary: 'Make a repository public or private (admins)',
        params: repositoryParams,
        body: z.object({ visibility }).strict(),
        response: answers({ 200: repositoryResource }),
      },
    },
    async (request) => {
      const name = repositoryOf(request.params);
      await identity.setVisibility(request.principal, name, request.body.visibility, contextOf(request));
      return toRepositoryResource(await identity.getRepository(request.principal, name));
    },
  );

  app.delete(
    '/repositories/:namespace/:name',
    {
      schema: {
        tags: ['repositories'],
        summary: 'Delete a repository with its tags and manifests (admins)',
        params: repositoryParams,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      await identity.deleteRepository(request.principal, repositoryOf(request.params), contextOf(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/repositories/:namespace/:name/permissions',
    {
      schema: {
        tags: ['permissions'],
        summary: 'Who holds which role on the repository (admins)',
        params: repositoryParams,
        response: answers({ 200: z.object({ permissions: z.array(permissionResource) }) }),
      },
    },
    async (request) => ({
      permissions: (await identity.listPermissions(request.principal, repositoryOf(request.params))).map(
        toPermissionResource,
      ),
    }),
  );

  app.put(
    '/repositories/:namespace/:name/permissions/:kind/:grantee',
    {
      schema: {
        tags: ['permissions'],
        summary: 'Grant a user, a robot of the namespace or a team of the organization a role (admins)',
        params: grantee,
        body: z.object({ role: repositoryRole }),
        response: answers({ 200: permissionResource }),
      },
    },
    async (request) => {
      const { params, body } = request;
      await identity.setPermission(
        request.principal,
        repositoryOf(params),
        granteeChecked(params),
        body.role,
        contextOf(request),
      );
      return { kind: params.kind, name: params.grantee, role: body.role };
    },
  );

  app.delete(
    '/repositories/:namespace/:name/permissions/:kind/:grantee',
    {
      schema: {
        tags: ['permissions'],
        summary: 'Take a role away (admins)',
        params: grantee,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const { params } = request;
      await identity.setPermission(
        request.principal,
        repositoryOf(params),
        granteeChecked(params),
        null,
        contextOf(request),
      );
      return reply.code(204).send(null);
    },
  );

  /** A `robot` grantee must be named like one, and a `user` grantee must not be. */
  function granteeChecked(params: z.infer<typeof grantee>) {
    const isRobotName = params.grantee.includes('+');
    if (params.kind === 'robot' && !isRobotName)
      throw invalid(`"${params.grantee}" is not a robot name (<namespace>+<name>)`);
    if (params.kind === 'user' && isRobotName)
      throw invalid(`"${params.grantee}" is a robot: use /permissions/robot/${params.grantee}`);
    return granteeOf(params);
  }
};

function splitName(name: string): { namespace: string; name: string } {
  const slash = name.indexOf('/');
  if (slash <= 0) throw invalid(`repository names are <namespace>/<name>, not "${name.slice(0, 80)}"`);
  return { namespace: name.slice(0, slash), name: name.slice(slash + 1) };
}
