import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { anonymous, principalKind, principalName, type Principal } from '../../identity/accounts.ts';
import type { AuditLog } from '../../identity/audit.ts';
import type { Authenticator } from '../../identity/authenticator.ts';
import { parseAuthorization } from './credentials.ts';
import { parseScopes, scopeString } from './scopes.ts';
import type { TokenService } from './token-service.ts';

export interface TokenRoutesOptions {
  tokens: TokenService;
  authenticator: Authenticator;
  audit: AuditLog;
}

/**
 * The Docker token endpoint, `/v2/auth`: GET with Basic credentials (or none, for anonymous pulls)
 * as docker, podman, skopeo and buildah use it, and the OAuth2 form POST that containerd tries first.
 */
export const tokenRoutes: FastifyPluginAsync<TokenRoutesOptions> = async (
  app,
  { tokens, authenticator, audit },
) => {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16 * 1024 },
    (_request, body, done) => {
      done(null, new URLSearchParams(body as string));
    },
  );
  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ApiError) {
      if (error.retryAfter) reply.header('Retry-After', String(error.retryAfter));
      return reply
        .code(error.status)
        .send({ errors: [{ code: ociCodeOf[error.code] ?? 'DENIED', message: error.message }] });
    }
    request.log.error({ err: error }, 'token request failed');
    return reply
      .code(500)
      .send({ errors: [{ code: 'UNAVAILABLE', message: 'internal error while issuing a token' }] });
  });

  const issue = async (
    request: FastifyRequest,
    reply: FastifyReply,
    principal: Principal,
    scopes: string[],
    oauth: boolean,
  ) => {
    const issued = await tokens.issue(principal, parseScopes(scopes));
    audit.record({
      kind: 'issue_token',
      actor: principalName(principal),
      actorKind: principalKind(principal),
      ip: request.ip,
      metadata: { requested: scopes, granted: issued.access.map(scopeString) },
    });
    reply.header('Cache-Control', 'no-store');
    const common = {
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    };
    return oauth
      ? { ...common, token_type: 'Bearer', scope: issued.access.map(scopeString).join(' ') }
      : { token: issued.token, ...common };
  };

  app.get('/v2/auth', async (request, reply) => {
    const query = request.query as Record<string, string | string[] | undefined>;
    const credentials = parseAuthorization(request.headers.authorization);
    let principal: Principal = anonymous;
    if (credentials?.kind === 'basic') {
      principal = await authenticator.authenticate(credentials.username, credentials.password, {
        ip: request.ip,
        via: 'token',
      });
    } else if (credentials) {
      throw new ApiError('SLW_ERR_UNAUTHENTICATED', 'the token endpoint takes Basic credentials or none');
    }
    return issue(request, reply, principal, values(query.scope), false);
  });

  app.post('/v2/auth', async (request, reply) => {
    const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
    if (form.get('grant_type') !== 'password') {
      // containerd falls back to GET on 400, which is what a refresh-token exchange should do here.
      throw new ApiError(
        'SLW_ERR_INVALID',
        'only grant_type=password is supported; use GET /v2/auth with Basic credentials',
      );
    }
    const principal = await authenticator.authenticate(
      form.get('username') ?? '',
      form.get('password') ?? '',
      { ip: request.ip, via: 'token' },
    );
    return issue(request, reply, principal, form.getAll('scope'), true);
  });
};

const ociCodeOf: Partial<Record<ApiError['code'], string>> = {
  SLW_ERR_THROTTLED: 'TOOMANYREQUESTS',
  SLW_ERR_UNAUTHENTICATED: 'UNAUTHORIZED',
  SLW_ERR_INVALID: 'UNSUPPORTED',
};

function values(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
