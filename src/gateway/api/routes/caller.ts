import { z } from 'zod';
import { unauthenticated } from '../../../errors.ts';
import { sessionCookie } from '../authentication.ts';
import {
  accountResource,
  issuedTokenResource,
  toAccountResource,
  toTokenResource,
  tokenResource,
} from '../resources.ts';
import { answers, noContent, type ApiRoutes } from '../routes.ts';

const dayMs = 24 * 3600 * 1000;

/** The caller's own account: sessions, who am I, personal access tokens. */
export const callerRoutes: ApiRoutes = async (app, { identity, sessionLifetime, contextOf }) => {
  app.post(
    '/session',
    {
      config: { skipAuthentication: true },
      schema: {
        tags: ['session'],
        summary: 'Sign in with a password; sets an HttpOnly session cookie',
        body: z.object({ username: z.string().min(1).max(255), password: z.string().min(1).max(1024) }),
        response: answers({ 200: z.object({ user: accountResource, expiresAt: z.iso.datetime() }) }),
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const session = await identity.startSession(username, password, sessionLifetime, contextOf(request));
      reply.setCookie(sessionCookie, session.token, {
        path: '/api/',
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        expires: session.expiresAt,
      });
      return { user: toAccountResource(session.user), expiresAt: session.expiresAt.toISOString() };
    },
  );

  app.delete(
    '/session',
    {
      schema: {
        tags: ['session'],
        summary: 'Sign out: the session ends and its cookie is cleared',
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const token = request.cookies[sessionCookie];
      if (token) await identity.endSession(request.principal, token);
      reply.clearCookie(sessionCookie, { path: '/api/' });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/user',
    {
      schema: {
        tags: ['user'],
        summary: 'The account the request acts as',
        response: answers({ 200: accountResource }),
      },
    },
    async (request) => {
      if (request.principal.kind !== 'account') throw unauthenticated('sign in first: send credentials');
      return toAccountResource(request.principal.account);
    },
  );

  app.get(
    '/user/tokens',
    {
      schema: {
        tags: ['user'],
        summary: "The caller's personal access tokens and sessions (never their secrets)",
        response: answers({ 200: z.object({ tokens: z.array(tokenResource) }) }),
      },
    },
    async (request) => ({
      tokens: (await identity.listPersonalTokens(request.principal)).map(toTokenResource),
    }),
  );

  app.post(
    '/user/tokens',
    {
      schema: {
        tags: ['user'],
        summary: 'Create a personal access token; its secret is in this answer only',
        body: z.object({
          name: z.string().min(1).max(100),
          expiresInDays: z
            .number()
            .int()
            .positive()
            .max(3650)
            .nullable()
            .optional()
            .describe('null or absent: the token does not expire'),
        }),
        response: answers({ 201: issuedTokenResource }),
      },
    },
    async (request, reply) => {
      const { name, expiresInDays } = request.body;
      const expiresAt = expiresInDays ? new Date(Date.now() + expiresInDays * dayMs) : null;
      const issued = await identity.createPersonalToken(
        request.principal,
        { name, expiresAt },
        contextOf(request),
      );
      const { lastUsedAt: _unused, ...info } = toTokenResource(issued.info);
      return reply.code(201).send({ ...info, token: issued.token });
    },
  );

  app.delete(
    '/user/tokens/:id',
    {
      schema: {
        tags: ['user'],
        summary: 'Revoke one of your tokens; it stops working at once',
        params: z.object({ id: z.coerce.number().int().positive() }),
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      await identity.revokePersonalToken(request.principal, request.params.id, contextOf(request));
      return reply.code(204).send(null);
    },
  );
};
