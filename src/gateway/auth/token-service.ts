import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import { randomUUID } from 'node:crypto';
import { principalKind, principalName, type Principal } from '../../identity/accounts.ts';
import type { AccessPolicy } from '../../identity/access-policy.ts';
import { parseRepositoryName } from '../../registry/names.ts';
import { requestedActions, type AccessEntry } from './scopes.ts';
import type { SigningKeySet } from './signing-keys.ts';

export interface TokenServiceOptions {
  keys: SigningKeySet;
  /** The `service` clients name and the tokens' audience. */
  service: string;
  issuer: string;
  lifetimeSeconds: number;
}

export interface IssuedRegistryToken {
  token: string;
  expiresIn: number;
  issuedAt: Date;
  access: AccessEntry[];
}

/** What a verified registry token says. */
export interface TokenClaims {
  subject: string | null;
  /** `user`, `organization`, `robot` or `build`; null for anonymous. */
  accountKind: string | null;
  /** The build a build token was issued to, so the registry can tell when it was revoked. */
  buildId: string | null;
  access: AccessEntry[];
  expiresAt: number;
}

export class InvalidTokenError extends Error {}

/**
 * Issues registry tokens (JWTs whose `access` claim lists what the bearer may do) and verifies them.
 * A token holds only what the principal may do: requested actions that are not allowed are left out,
 * never refused, as the Docker token specification asks.
 */
export class TokenService {
  readonly #options: TokenServiceOptions;
  readonly #policy: AccessPolicy;
  /** Verified tokens, so a pull's dozens of requests verify one signature. */
  readonly #verified = new LRUCache<string, TokenClaims>({ max: 20_000, ttlAutopurge: false });

  constructor(options: TokenServiceOptions, policy: AccessPolicy) {
    this.#options = options;
    this.#policy = policy;
  }

  get service(): string {
    return this.#options.service;
  }

  async issue(principal: Principal, requested: readonly AccessEntry[]): Promise<IssuedRegistryToken> {
    const access: AccessEntry[] = [];
    for (const entry of requested) {
      const granted = await this.#grant(principal, entry);
      if (granted) access.push(granted);
    }
    const { signing } = this.#options.keys;
    const issuedAt = new Date();
    const now = Math.floor(issuedAt.getTime() / 1000);
    const expiresAt = Math.min(now + this.#options.lifetimeSeconds, credentialExpiry(principal));
    const token = await new SignJWT({
      access,
      ...(principal.kind === 'anonymous' ? {} : { account_kind: principalKind(principal) }),
      ...(principal.kind === 'build' ? { build_id: principal.build.buildId } : {}),
    })
      .setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: 'JWT' })
      .setIssuer(this.#options.issuer)
      .setSubject(principalName(principal) ?? '')
      .setAudience(this.#options.service)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(signing.privateKey);
    return { token, expiresIn: expiresAt - now, issuedAt, access };
  }

  /** Throws InvalidTokenError for a tampered, expired, foreign-audience or unknown-key token. */
  async verify(token: string): Promise<TokenClaims> {
    const cached = this.#verified.get(token);
    if (cached && cached.expiresAt * 1000 > Date.now()) return cached;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          const key = header.kid ? this.#options.keys.byKid.get(header.kid) : undefined;
          if (!key || key.alg !== header.alg)
            throw new InvalidTokenError('the token was not signed by this registry');
          return key.publicKey;
        },
        { issuer: this.#options.issuer, audience: this.#options.service, algorithms: ['ES256', 'RS256'] },
      ));
    } catch (error) {
      throw new InvalidTokenError(describe(error), { cause: error });
    }
    const claims: TokenClaims = {
      subject: payload.sub ? payload.sub : null,
      accountKind: typeof payload.account_kind === 'string' ? payload.account_kind : null,
      buildId: typeof payload.build_id === 'string' ? payload.build_id : null,
      access: Array.isArray(payload.access) ? (payload.access as AccessEntry[]) : [],
      expiresAt: payload.exp!,
    };
    this.#verified.set(token, claims, { ttl: Math.max(1, claims.expiresAt * 1000 - Date.now()) });
    return claims;
  }

  async #grant(principal: Principal, entry: AccessEntry): Promise<AccessEntry | null> {
    if (entry.type === 'registry') {
      // The catalog lists only what the caller can read, so any account may ask for it.
      return entry.name === 'catalog' && principal.kind === 'account'
        ? { type: 'registry', name: 'catalog', actions: ['*'] }
        : null;
    }
    try {
      parseRepositoryName(entry.name);
    } catch {
      return null;
    }
    const actions = await this.#policy.grantedActions(principal, entry.name, requestedActions(entry));
    return actions.length > 0 ? { type: 'repository', name: entry.name, actions } : null;
  }
}

/** A registry token never outlives the credential it was issued for (in seconds since the epoch). */
function credentialExpiry(principal: Principal): number {
  return principal.kind === 'build' ? Math.floor(principal.build.expiresAt.getTime() / 1000) : Infinity;
}

function describe(error: unknown): string {
  if (error instanceof InvalidTokenError) return error.message;
  if (error instanceof joseErrors.JWTExpired) return 'the token has expired; ask for a new one';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return `the token is not for this registry (${error.claim} does not match)`;
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed)
    return 'the token signature does not verify';
  return 'the token is malformed';
}

/** Whether the token's access claim covers every action on the repository. */
export function tokenAllows(claims: TokenClaims, repository: string, actions: readonly string[]): boolean {
  const granted = new Set<string>();
  for (const entry of claims.access) {
    if (entry.type === 'repository' && entry.name === repository)
      for (const action of entry.actions) granted.add(action);
  }
  return actions.every((action) => granted.has(action) || granted.has('*'));
}

export function tokenAllowsCatalog(claims: TokenClaims): boolean {
  return claims.access.some((entry) => entry.type === 'registry' && entry.name === 'catalog');
}
