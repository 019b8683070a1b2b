import { LRUCache } from 'lru-cache';
import type { Database } from '../db/database.ts';
import { ApiError, forbidden, unauthenticated } from '../errors.ts';
import {
  findAccount,
  findAccountById,
  findToken,
  passwordHashOf,
  principalKind,
  principalName,
  touchToken,
  type CredentialKind,
  type Principal,
  type TokenKind,
} from './accounts.ts';
import type { AuditLog } from './audit.ts';
import { findBuildToken, touchBuildToken } from './build-token-store.ts';
import { buildUsername } from './build-tokens.ts';
import type { LoginThrottle } from './login-throttle.ts';
import { parseToken, sha256, verifierMatches, verifyPassword } from './secrets.ts';

/** Usernames clients send with a token when the account's name is not at hand. */
const tokenUsernames = new Set(['$token', '$oauthtoken', 'oauth2accesstoken']);

const credentialOf: Record<TokenKind, CredentialKind> = {
  personal: 'personal-token',
  robot: 'robot-token',
  session: 'session',
};

/** How long a checked credential is trusted before the database and argon2 are asked again. */
const credentialCacheMs = 60_000;

/** Where a build token is accepted: the registry and its token endpoint, not the API or sessions. */
const buildTokenLogins = new Set(['registry', 'token']);

export interface LoginContext {
  ip?: string;
  /** Recorded with the login in the audit log: 'registry', 'api', 'token', 'session'. */
  via?: string;
}

/**
 * Turns a username and a secret (a password, a robot token or a personal access token) into a
 * principal, or refuses. Argon2 makes a password check deliberately slow, so a credential that passed
 * is remembered for a minute under its SHA-256; `forget()` drops every remembered credential of an
 * account when its password or tokens change. Build tokens are never remembered, so revoking one, or
 * its expiry, applies to the very next request.
 */
export class Authenticator {
  readonly #db: Database;
  readonly #audit: AuditLog;
  readonly #throttle: LoginThrottle;
  readonly #checked = new LRUCache<string, { principal: Principal; accountId: number }>({
    max: 10_000,
    ttl: credentialCacheMs,
  });

  constructor(db: Database, audit: AuditLog, throttle: LoginThrottle) {
    this.#db = db;
    this.#audit = audit;
    this.#throttle = throttle;
  }

  async authenticate(username: string, secret: string, context: LoginContext = {}): Promise<Principal> {
    const cacheKey = sha256(`${username}\0${secret}`).toString('base64');
    const cached = this.#checked.get(cacheKey);
    if (cached) return cached.principal;

    this.#throttle.check(username, context.ip);
    const principal = await this.#check(username, secret);
    const via = context.via ?? 'registry';
    const misplacedBuild = principal?.kind === 'build' && !buildTokenLogins.has(via);
    const entry = {
      kind: principal && !misplacedBuild ? ('login_success' as const) : ('login_failure' as const),
      actor: principal ? principalName(principal) : username.slice(0, 255),
      actorKind: principal ? principalKind(principal) : null,
      ip: context.ip ?? null,
      success: principal !== null && !misplacedBuild,
      metadata: { via, credential: principal ? credentialNameOf(principal) : null },
    };
    this.#audit.record(entry);
    if (!principal || principal.kind === 'anonymous') {
      this.#throttle.failed(username, context.ip);
      throw unauthenticated(`invalid username or password (or token) for ${username.slice(0, 100)}`);
    }
    if (misplacedBuild) {
      throw forbidden('a build token works only with the registry (/v2 and /v2/auth), not here');
    }
    this.#throttle.succeeded(username);
    if (principal.kind === 'account')
      this.#checked.set(cacheKey, { principal, accountId: principal.account.id });
    return principal;
  }

  /** Drops every remembered credential of the account (after a password change, a token revoked, a deletion). */
  forget(accountId: number): void {
    for (const [key, value] of this.#checked.entries()) {
      if (value.accountId === accountId) this.#checked.delete(key);
    }
  }

  async #check(username: string, secret: string): Promise<Principal | null> {
    const token = parseToken(secret);
    if (token) {
      const stored = await findToken(this.#db, token.selector);
      if (!stored) return this.#checkBuildToken(username, token);
      if (!verifierMatches(stored.verifierHash, token.verifier)) return null;
      if (stored.expiresAt && stored.expiresAt.getTime() <= Date.now()) return null;
      const account = await findAccountById(this.#db, stored.accountId);
      if (!account) return null;
      if (account.name !== username && !tokenUsernames.has(username)) return null;
      void touchToken(this.#db, stored.id).catch(() => {});
      return { kind: 'account', account, via: credentialOf[stored.kind] };
    }
    const account = await findAccount(this.#db, username);
    const hash = account?.kind === 'user' ? await passwordHashOf(this.#db, account.id) : null;
    if (!(await verifyPassword(hash, secret)) || !account) return null;
    return { kind: 'account', account, via: 'password' };
  }

  async #checkBuildToken(username: string, token: { selector: string; verifier: string }) {
    const stored = await findBuildToken(this.#db, token.selector);
    if (!stored || !verifierMatches(stored.verifierHash, token.verifier)) return null;
    if (stored.expiresAt.getTime() <= Date.now()) return null;
    const name = buildUsername(stored.buildId);
    if (name !== username && !tokenUsernames.has(username)) return null;
    void touchBuildToken(this.#db, stored.id).catch(() => {});
    const { buildId, repository, expiresAt, pullRobot } = stored;
    return { kind: 'build', build: { buildId, name, repository, expiresAt, pullRobot } } satisfies Principal;
  }
}

function credentialNameOf(principal: Principal): CredentialKind | 'build-token' | null {
  if (principal.kind === 'account') return principal.via;
  return principal.kind === 'build' ? 'build-token' : null;
}

export function isThrottled(error: unknown): error is ApiError {
  return error instanceof ApiError && error.code === 'SLW_ERR_THROTTLED';
}
