import { z } from 'zod';
import { accountResource, toAccountResource } from '../resources.ts';
import { answers, noContent, type ApiRoutes } from '../routes.ts';

const userName = z.object({ name: z.string().max(255) });

/** User accounts: superusers manage them; a user reads and changes their own. */
export const userRoutes: ApiRoutes = async (app, { identity, contextOf }) => {
  app.get(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'List users (superusers)',
        response: answers({ 200: z.object({ users: z.array(accountResource) }) }),
      },
    },
    async (request) => ({ users: (await identity.listUsers(request.principal)).map(toAccountResource) }),
  );

  app.post(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Create a user (superusers)',
        body: z.object({
          name: z.string().max(255),
          password: z.string().max(1024),
          email: z.email().max(255).nullable().optional(),
          superuser: z.boolean().optional(),
        }),
        response: answers({ 201: accountResource }),
      },
    },
    async (request, reply) => {
      const user = await identity.createUser(request.principal, request.body, contextOf(request));
      return reply.code(201).send(toAccountResource(user));
    },
  );

  app.get(
    '/users/:name',
    {
      schema: {
        tags: ['users'],
        summary: 'Read a user (yourself, or anyone as a superuser)',
        params: userName,
        response: answers({ 200: accountResource }),
      },
    },
    async (request) => toAccountResource(await identity.getUser(request.principal, request.params.name)),
  );

  app.patch(
    '/users/:name',
    {
      schema: {
        tags: ['users'],
        summary: 'Change a password or email (yourself), or superuser status (superusers)',
        params: userName,
        body: z
          .object({
            password: z.string().max(1024).optional(),
            email: z.email().max(255).nullable().optional(),
            superuser: z.boolean().optional(),
          })
          .strict(),
        response: answers({ 200: accountResource }),
      },
    },
    async (request) =>
      toAccountResource(
        await identity.updateUser(request.principal, request.params.name, request.body, contextOf(request)),
      ),
  );

  app.delete(
    '/users/:name',
    {
      schema: {
        tags: ['users'],
        summary: 'Delete a user (superusers); refused while the user still owns repositories',
        params: userName,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      await identity.deleteUser(request.principal, request.params.name, contextOf(request));
      return reply.code(204).send(null);
    },
  );
};
