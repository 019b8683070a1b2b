import { z } from 'zod';
import { parseAccountName, robotName } from '../../../identity/names.ts';
import { accountResource, toAccountResource } from '../resources.ts';
import { answers, noContent, type ApiRoutes } from '../routes.ts';

const namespace = z.object({ namespace: z.string().max(255) });
const robot = namespace.extend({ robot: z.string().max(255) });
const fullName = (params: { namespace: string; robot: string }) =>
  robotName(parseAccountName(params.namespace), params.robot);

/** Robot accounts `<namespace>+<name>` of a user or an organization, and their tokens. */
export const robotRoutes: ApiRoutes = async (app, { identity, contextOf }) => {
  app.get(
    '/namespaces/:namespace/robots',
    {
      schema: {
        tags: ['robots'],
        summary: "A namespace's robots (its user, or the organization's admins)",
        params: namespace,
        response: answers({ 200: z.object({ robots: z.array(accountResource) }) }),
      },
    },
    async (request) => ({
      robots: (await identity.listRobots(request.principal, request.params.namespace)).map(toAccountResource),
    }),
  );

  app.put(
    '/namespaces/:namespace/robots/:robot',
    {
      schema: {
        tags: ['robots'],
        summary: 'Create a robot; its token is in this answer only',
        params: robot,
        body: z.object({ description: z.string().max(500).optional() }).nullish(),
        response: answers({ 201: accountResource.extend({ token: z.string() }) }),
      },
    },
    async (request, reply) => {
      const { namespace: owner, robot: short } = request.params;
      const created = await identity.createRobot(
        request.principal,
        owner,
        short,
        request.body ?? {},
        contextOf(request),
      );
      return reply.code(201).send({ ...toAccountResource(created.robot), token: created.token });
    },
  );

  app.get(
    '/namespaces/:namespace/robots/:robot',
    {
      schema: {
        tags: ['robots'],
        summary: 'Read a robot',
        params: robot,
        response: answers({ 200: accountResource }),
      },
    },
    async (request) =>
      toAccountResource(await identity.getRobot(request.principal, fullName(request.params))),
  );

  app.delete(
    '/namespaces/:namespace/robots/:robot',
    {
      schema: {
        tags: ['robots'],
        summary: 'Delete a robot; its token stops working at once',
        params: robot,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      await identity.deleteRobot(request.principal, fullName(request.params), contextOf(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/namespaces/:namespace/robots/:robot/regenerate',
    {
      schema: {
        tags: ['robots'],
        summary: 'Give a robot a new token; the old one stops working at once',
        params: robot,
        response: answers({ 200: z.object({ name: z.string(), token: z.string() }) }),
      },
    },
    async (request) => {
      const name = fullName(request.params);
      return {
        name,
        token: await identity.regenerateRobotToken(request.principal, name, contextOf(request)),
      };
    },
  );
};
