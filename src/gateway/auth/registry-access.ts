import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { anonymous, findAccount, principalName, type Principal } from '../../identity/accounts.ts';
import type { AccessPolicy } from '../../identity/access-policy.ts';
import type { Authenticator } from '../../identity/authenticator.ts';
import { listReadableRepositories } from '../../identity/permissions.ts';
import type { Database } from '../../db/database.ts';
import { OciError } from '../../registry/errors.ts';
import type { AccessRequest, RegistryAccess } from '../../registry/http/access.ts';
import type { Actor } from '../../registry/store.ts';
import { parseAuthorization } from './credentials.ts';
import { scopeString, type AccessEntry } from './scopes.ts';
import { InvalidTokenError, tokenAllows, tokenAllowsCatalog, type TokenService } from './token-service.ts';

export interface RegistryActor extends Actor {
  kind: 'user' | 'robot' | 'build' | 'anonymous';
}

/** Why the account (null: anonymous) may not push to or delete from a repository it has write on. */
export type WriteRefusal = (repository: string, actor: string | null) => string | null;

/** Throws DENIED when `access` writes to a repository `writeRefusal` keeps from `actor`. */
export function checkWrite(writeRefusal: WriteRefusal, access: AccessRequest, actor: string | null): void {
  if (access.kind !== 'repository' || access.actions.every((action) => action === 'pull')) return;
  const refusal = writeRefusal(access.repository, actor);
  if (refusal !== null) throw new OciError('DENIED', refusal);
}

/**
 * Token authentication for /v2, as Docker clients expect it: a request without credentials, or whose
 * token does not cover it, gets 401 with a Bearer challenge naming the realm, service and scope; the
 * client fetches a token from /v2/auth and retries. Basic credentials on /v2 itself also work.
 */
export class TokenRegistryAccess implements RegistryAccess {
  readonly #tokens: TokenService;
  readonly #authenticator: Authenticator;
  readonly #policy: AccessPolicy;
  readonly #db: Database;
  readonly #realm: string | undefined;
  readonly #writeRefusal: WriteRefusal;
  readonly #buildTokenIsLive: (buildId: string) => Promise<boolean>;
  /** Who each request acted as, for the audit log. */
  readonly #actors = new WeakMap<FastifyRequest, RegistryActor>();

  constructor(options: {
    tokens: TokenService;
    authenticator: Authenticator;
    policy: AccessPolicy;
    db: Database;
    realm?: string;
    /** Repositories read-only whatever the permissions say (mirrors, written by their robot only). */
    writeRefusal?: WriteRefusal;
    /** Whether a build's token still stands: registry tokens issued with it die with it. */
    buildTokenIsLive?: (buildId: string) => Promise<boolean>;
  }) {
    this.#tokens = options.tokens;
    this.#authenticator = options.authenticator;
    this.#policy = options.policy;
    this.#db = options.db;
    this.#realm = options.realm;
    this.#writeRefusal = options.writeRefusal ?? (() => null);
    this.#buildTokenIsLive = options.buildTokenIsLive ?? (async () => false);
  }

  actorOf(request: FastifyRequest): RegistryActor | undefined {
    return this.#actors.get(request);
  }

  async authorize(request: FastifyRequest, access: AccessRequest): Promise<Actor> {
    const actor = await this.#authorize(request, access);
    checkWrite(this.#writeRefusal, access, actor.name);
    this.#actors.set(request, actor);
    return actor;
  }

  async #authorize(request: FastifyRequest, access: AccessRequest): Promise<RegistryActor> {
    const credentials = parseAuthorization(request.headers.authorization);
    if (credentials?.kind === 'bearer') {
      let claims;
      try {
        claims = await this.#tokens.verify(credentials.token);
      } catch (error) {
        if (!(error instanceof InvalidTokenError)) throw error;
        throw this.#challenge(request, access, error.message, 'invalid_token');
      }
      if (claims.buildId !== null && !(await this.#buildTokenIsLive(claims.buildId))) {
        throw this.#challenge(request, access, 'the build token was revoked or has expired', 'invalid_token');
      }
      const allowed =
        access.kind === 'base' ||
        (access.kind === 'catalog'
          ? tokenAllowsCatalog(claims)
          : tokenAllows(claims, access.repository, access.actions));
      if (!allowed) {
        throw this.#challenge(
          request,
          access,
          'the token does not grant this; ask /v2/auth for a token with the scope below',
          'insufficient_scope',
        );
      }
      if (claims.buildId !== null) {
        const granted = claims.access
          .filter((entry) => entry.type === 'repository')
          .map((entry) => entry.name);
        return this.#actor('build', claims.subject, async (names) =>
          names.filter((name) => granted.includes(name)),
        );
      }
      const kind = claims.subject ? (claims.accountKind === 'robot' ? 'robot' : 'user') : 'anonymous';
      return this.#actor(kind, claims.subject, async (names) =>
        this.#visibleTo(await this.#principalNamed(claims.subject), names),
      );
    }
    if (credentials?.kind === 'basic') {
      const principal = await this.#basicPrincipal(
        request,
        credentials.username,
        credentials.password,
        access,
      );
      if (access.kind === 'repository') {
        const granted = await this.#policy.grantedActions(principal, access.repository, access.actions);
        if (granted.length < access.actions.length) {
          throw new OciError(
            'DENIED',
            `${principalName(principal) ?? 'anonymous'} may not ${access.actions.join(' and ')} ${access.repository}`,
          );
        }
      }
      if (principal.kind === 'build') {
        const { name, repository } = principal.build;
        return this.#actor('build', name, async (names) => names.filter((among) => among === repository));
      }
      const account = principal.kind === 'account' ? principal.account : null;
      return this.#actor(account?.kind === 'robot' ? 'robot' : 'user', account?.name ?? null, (names) =>
        this.#visibleTo(principal, names),
      );
    }
    throw this.#challenge(
      request,
      access,
      'authentication required: log in, or fetch a token from the realm below',
    );
  }

  #actor(
    kind: RegistryActor['kind'],
    name: string | null,
    visibleAmong: Actor['visibleAmong'],
  ): RegistryActor {
    return { kind, name, visibleAmong };
  }

  async #basicPrincipal(
    request: FastifyRequest,
    username: string,
    password: string,
    access: AccessRequest,
  ): Promise<Principal> {
    try {
      return await this.#authenticator.authenticate(username, password, { ip: request.ip, via: 'registry' });
    } catch (error) {
      if (error instanceof ApiError && error.code === 'SLW_ERR_THROTTLED') {
        throw new OciError('TOOMANYREQUESTS', error.message, {
          headers: { 'Retry-After': String(error.retryAfter ?? 1) },
        });
      }
      if (error instanceof ApiError && error.code === 'SLW_ERR_UNAUTHENTICATED') {
        throw this.#challenge(request, access, error.message);
      }
      throw error;
    }
  }

  async #principalNamed(name: string | null): Promise<Principal> {
    if (!name) return anonymous;
    const account = await findAccount(this.#db, name);
    return account ? { kind: 'account', account, via: 'registry-token' } : anonymous;
  }

  async #visibleTo(principal: Principal, names: string[]): Promise<string[]> {
    const rows = await listReadableRepositories(this.#db, principal, { among: names, limit: names.length });
    return rows.map((row) => row.name);
  }

  #challenge(request: FastifyRequest, access: AccessRequest, message: string, error?: string): OciError {
    const realm = this.#realm ?? `${request.protocol}://${request.host}/v2/auth`;
    const parts = [`realm="${realm}"`, `service="${this.#tokens.service}"`];
    const scope = scopeOf(access);
    if (scope) parts.push(`scope="${scopeString(scope)}"`);
    if (error) parts.push(`error="${error}"`);
    return new OciError('UNAUTHORIZED', message, {
      headers: { 'WWW-Authenticate': `Bearer ${parts.join(',')}` },
      ...(access.kind === 'repository'
        ? { detail: [{ Type: 'repository', Name: access.repository, Action: access.actions.join(',') }] }
        : {}),
    });
  }
}

function scopeOf(access: AccessRequest): AccessEntry | null {
  if (access.kind === 'catalog') return { type: 'registry', name: 'catalog', actions: ['*'] };
  if (access.kind === 'repository')
    return { type: 'repository', name: access.repository, actions: access.actions };
  return null;
}
