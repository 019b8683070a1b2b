import type { FastifyRequest } from 'fastify';
import { forbidden, unauthenticated } from '../../errors.ts';
import { anonymous, type Principal } from '../../identity/accounts.ts';
import type { Authenticator } from '../../identity/authenticator.ts';
import { parseToken } from '../../identity/secrets.ts';
import { parseAuthorization } from '../auth/credentials.ts';

export const sessionCookie = 'slipway_session';

/** The username the authenticator takes with a token that names its account by itself. */
const tokenUser = '$token';

/**
 * Who an API request acts as: Basic credentials (a password or a token), a Bearer personal or robot
 * token, or the session cookie; anonymous without any. Registry JWTs are refused here: they carry
 * registry scopes, not the account's full rights.
 */
export async function principalOf(request: FastifyRequest, authenticator: Authenticator): Promise<Principal> {
  const credentials = parseAuthorization(request.headers.authorization);
  const context = { ip: request.ip, via: 'api' };
  if (credentials?.kind === 'basic') {
    return authenticator.authenticate(credentials.username, credentials.password, context);
  }
  if (credentials?.kind === 'bearer') {
    if (!parseToken(credentials.token)) {
      throw unauthenticated(
        'the API takes a personal or robot token (slw_…) as Bearer credential; registry tokens from /v2/auth work only on /v2',
      );
    }
    return authenticator.authenticate(tokenUser, credentials.token, context);
  }
  if (request.headers.authorization) {
    throw unauthenticated('unsupported Authorization scheme: use Basic or Bearer');
  }
  const session = request.cookies[sessionCookie];
  if (session) {
    refuseCrossSite(request);
    return authenticator.authenticate(tokenUser, session, { ...context, via: 'session' });
  }
  return anonymous;
}

/**
 * The session cookie is SameSite=Strict already; a request that still says it comes from another
 * origin is refused rather than trusted with the cookie.
 */
function refuseCrossSite(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    throw forbidden('the session cookie is not accepted on cross-site requests');
  }
  if (origin !== undefined && origin !== 'null') {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw forbidden('the Origin header is not a URL');
    }
    if (host !== request.headers.host) {
      throw forbidden(`the session cookie is not accepted from ${origin}`);
    }
  }
}
