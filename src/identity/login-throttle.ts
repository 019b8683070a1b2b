import { LRUCache } from 'lru-cache';
import { ApiError } from '../errors.ts';

export interface LoginThrottleOptions {
  /** Failures allowed in a row before a pause is imposed. */
  freeFailures: number;
  /** The first pause, in seconds; it doubles with every further failure, up to `maxDelaySeconds`. */
  baseDelaySeconds: number;
  maxDelaySeconds: number;
}

interface Failures {
  count: number;
  blockedUntil: number;
}

/**
 * Slows password and token guessing: after a few failures in a row for one account name, or from
 * one address, further attempts are refused (429 with Retry-After) for a pause that doubles each
 * time. A success for the account clears its count. Kept per process.
 */
export class LoginThrottle {
  readonly #failures = new LRUCache<string, Failures>({ max: 50_000, ttl: 24 * 3600 * 1000 });
  readonly #options: LoginThrottleOptions;
  readonly #now: () => number;

  constructor(options: LoginThrottleOptions, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
  }

  /** Throws SLW_ERR_THROTTLED while the account or the address is paused. */
  check(username: string, ip: string | undefined): void {
    for (const key of this.#keys(username, ip)) {
      const entry = this.#failures.get(key);
      const wait = entry ? entry.blockedUntil - this.#now() : 0;
      if (wait > 0) {
        throw new ApiError(
          'SLW_ERR_THROTTLED',
          `too many failed logins${key.startsWith('ip:') ? ' from this address' : ` for ${username}`}; try again in ${Math.ceil(wait / 1000)} s`,
          { retryAfter: Math.ceil(wait / 1000) },
        );
      }
    }
  }

  failed(username: string, ip: string | undefined): void {
    for (const key of this.#keys(username, ip)) {
      const entry = this.#failures.get(key) ?? { count: 0, blockedUntil: 0 };
      entry.count += 1;
      // An address gets more room than an account: many users may share one NAT.
      const free = key.startsWith('ip:') ? this.#options.freeFailures * 4 : this.#options.freeFailures;
      const over = entry.count - free + 1;
      if (over > 0) {
        const delay = Math.min(
          this.#options.baseDelaySeconds * 2 ** (over - 1),
          this.#options.maxDelaySeconds,
        );
        entry.blockedUntil = this.#now() + delay * 1000;
      }
      this.#failures.set(key, entry);
    }
  }

  succeeded(username: string): void {
    this.#failures.delete(`user:${username}`);
  }

  #keys(username: string, ip: string | undefined): string[] {
    return ip ? [`user:${username}`, `ip:${ip}`] : [`user:${username}`];
  }
}
