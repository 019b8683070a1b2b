import { MalformedChallengeError, parseChallenges } from './challenge.ts';
import { UpstreamProtocolError, type UpstreamErrorContext } from './errors.ts';
import { TokenCache, type IssuedToken } from './token-cache.ts';

export interface UpstreamCredentials {
  username: string;
  password: string;
}

/** A token request as the Docker token spec has it: GET `realm?service=…&scope=…`. */
export interface TokenRequest {
  realm: string;
  service: string | undefined;
  scopes: string[];
}

export type TokenFetcher = (request: TokenRequest) => Promise<IssuedToken>;

/** How the upstream wants requests authenticated, as its challenges have taught. */
export type AuthScheme = 'none' | 'basic' | 'bearer';

type Learned =
  { scheme: 'none' } | { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service: string | undefined };

/**
 * Authentication towards one upstream. Until a request is challenged, requests go out without
 * credentials. A `Basic` challenge makes every later request carry the credentials; a `Bearer`
 * challenge names the token realm, and from then on each request carries a token for its scope,
 * cached until shortly before it expires and fetched once however many requests need it at the same
 * time. Credentials go only to the registry (Basic) or to the realm (to get a token), never elsewhere.
 */
export class UpstreamAuth {
  readonly #credentials: UpstreamCredentials | undefined;
  readonly #fetchToken: TokenFetcher;
  readonly #tokens: TokenCache;
  #learned: Learned = { scheme: 'none' };

  constructor(options: { credentials?: UpstreamCredentials; fetchToken: TokenFetcher; tokens?: TokenCache }) {
    this.#credentials = options.credentials;
    this.#fetchToken = options.fetchToken;
    this.#tokens = options.tokens ?? new TokenCache();
  }

  get scheme(): AuthScheme {
    return this.#learned.scheme;
  }

  /** Who requests are made as, for messages: `user "bob"` or `anonymous`. */
  get principal(): string {
    return this.#credentials ? `user "${this.#credentials.username}"` : 'anonymous';
  }

  /** The token endpoint's Basic credentials (none: an anonymous token). */
  get basicCredentials(): string | undefined {
    return this.#credentials ? basicAuthorization(this.#credentials) : undefined;
  }

  /** The Authorization to send with a request of `scope`, from what earlier challenges taught. */
  async authorizationFor(scope: string | undefined): Promise<string | undefined> {
    const learned = this.#learned;
    if (learned.scheme === 'basic') return this.basicCredentials;
    if (learned.scheme !== 'bearer') return undefined;
    return `Bearer ${await this.#token(learned.realm, learned.service, scope, scope)}`;
  }

  /**
   * Answers a 401's challenge: learns the scheme, drops the token that was refused, and returns the
   * Authorization to retry with, or undefined when a retry cannot succeed (Basic without credentials,
   * or with the credentials that were just refused; an unknown scheme).
   */
  async answer(
    context: UpstreamErrorContext,
    wwwAuthenticate: string | string[] | undefined,
    scope: string | undefined,
    sent: string | undefined,
  ): Promise<string | undefined> {
    let challenges;
    try {
      challenges = parseChallenges(wwwAuthenticate);
    } catch (error) {
      if (!(error instanceof MalformedChallengeError)) throw error;
      throw new UpstreamProtocolError(context, error.message, { status: 401, cause: error });
    }
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm)
        throw new UpstreamProtocolError(context, 'Bearer challenge without a realm', { status: 401 });
      const service = bearer.params.service;
      this.#learned = { scheme: 'bearer', realm, service };
      if (sent?.startsWith('Bearer ')) {
        this.#tokens.invalidate(keyOf(realm, service, scope), sent.slice('Bearer '.length));
      }
      return `Bearer ${await this.#token(realm, service, scope, bearer.params.scope ?? scope)}`;
    }
    if (challenges.some((challenge) => challenge.scheme === 'basic')) {
      const basic = this.basicCredentials;
      if (basic === undefined || basic === sent) return undefined;
      this.#learned = { scheme: 'basic' };
      return basic;
    }
    return undefined;
  }

  /**
   * A token cached under the request's scope but asked for with the scope the upstream challenged
   * (usually the same), so the next request of that scope carries a token the upstream accepted.
   */
  #token(
    realm: string,
    service: string | undefined,
    scope: string | undefined,
    requested: string | undefined,
  ): Promise<string> {
    return this.#tokens.obtain(keyOf(realm, service, scope), () =>
      this.#fetchToken({ realm, service, scopes: requested ? requested.split(' ').filter(Boolean) : [] }),
    );
  }
}

function keyOf(realm: string, service: string | undefined, scope: string | undefined): string {
  return `${realm}\n${service ?? ''}\n${scope ?? ''}`;
}

export function basicAuthorization(credentials: UpstreamCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
