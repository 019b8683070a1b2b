import { LRUCache } from 'lru-cache';

/** What a token endpoint gave: the token and how many seconds it lives. */
export interface IssuedToken {
  token: string;
  lifetimeSeconds: number;
}

interface CachedToken {
  token: string;
  /** Epoch milliseconds after which the token is not offered any more. */
  usableUntil: number;
}

/** The most distinct scopes (repositories, roughly) whose tokens are kept. */
const maxTokens = 2000;

/**
 * Bearer tokens by key (realm, service and scope), each kept until shortly before it expires. Requests
 * that need the same key while its token is being fetched share that one fetch; a failed fetch is not
 * remembered, so the next request tries again.
 */
export class TokenCache {
  readonly #tokens = new LRUCache<string, CachedToken>({ max: maxTokens });
  readonly #fetching = new Map<string, Promise<string>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The cached token for `key` while it is still usable. */
  peek(key: string): string | undefined {
    const cached = this.#tokens.get(key);
    if (!cached) return undefined;
    if (cached.usableUntil > this.#now()) return cached.token;
    this.#tokens.delete(key);
    return undefined;
  }

  /** The cached token, else the result of the fetch in flight for `key`, else of a new `fetch`. */
  obtain(key: string, fetch: () => Promise<IssuedToken>): Promise<string> {
    const cached = this.peek(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const inFlight = this.#fetching.get(key);
    if (inFlight) return inFlight;
    const started = this.#now();
    const fetching = fetch()
      .then(({ token, lifetimeSeconds }) => {
        this.#tokens.set(key, { token, usableUntil: started + usableMilliseconds(lifetimeSeconds) });
        return token;
      })
      .finally(() => this.#fetching.delete(key));
    this.#fetching.set(key, fetching);
    return fetching;
  }

  /**
   * Forgets `token` for `key` after the upstream refused it. A token fetched since (by a concurrent
   * request that was refused too) is kept, so one refusal costs one new fetch, not one per request.
   */
  invalidate(key: string, token: string): void {
    if (this.#tokens.get(key)?.token === token) this.#tokens.delete(key);
  }
}

/**
 * A token is offered until a tenth of its lifetime (at most 30 s) before it expires, so a request
 * sent just before expiry does not arrive just after it. Counted from when the fetch started.
 */
export function usableMilliseconds(lifetimeSeconds: number): number {
  const margin = Math.min(30, lifetimeSeconds / 10);
  return Math.max(0, (lifetimeSeconds - margin) * 1000);
}
