import { Counter, Gauge, type Registry } from 'prom-client';
import type { RateLimitState } from '../upstream/rate-limit.ts';

export interface CacheMetrics {
  cacheBytes: Gauge<'upstream'>;
  budgetBytes: Gauge<'upstream'>;
  evictions: Counter<'upstream'>;
  evictedBytes: Counter<'upstream'>;
}

export function createCacheMetrics(registry: Registry): CacheMetrics {
  const registers = [registry];
  return {
    cacheBytes: new Gauge({
      name: 'slipway_proxy_cache_bytes',
      help: "Bytes an upstream's cached repositories hold (distinct blobs and manifests), as of the last eviction run",
      labelNames: ['upstream'],
      registers,
    }),
    budgetBytes: new Gauge({
      name: 'slipway_proxy_cache_budget_bytes',
      help: "An upstream's storage budget, for upstreams that have one",
      labelNames: ['upstream'],
      registers,
    }),
    evictions: new Counter({
      name: 'slipway_proxy_evictions_total',
      help: 'Cached tags (and untagged cached manifests) evicted to keep an upstream within its storage budget',
      labelNames: ['upstream'],
      registers,
    }),
    evictedBytes: new Counter({
      name: 'slipway_proxy_evicted_bytes_total',
      help: "Bytes eviction took off an upstream's cache",
      labelNames: ['upstream'],
      registers,
    }),
  };
}

/** What each upstream says about its rate limit, from its answers' headers, and how often it refuses. */
export class RateLimitMetrics {
  readonly #limit: Gauge<'upstream'>;
  readonly #remaining: Gauge<'upstream'>;
  readonly #window: Gauge<'upstream'>;
  readonly #retryAfter: Gauge<'upstream'>;
  readonly #limited: Counter<'upstream'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ['upstream'] as const;
    this.#limit = new Gauge({
      name: 'slipway_upstream_ratelimit_limit',
      help: "The upstream's latest RateLimit-Limit: requests allowed per window",
      labelNames,
      registers,
    });
    this.#remaining = new Gauge({
      name: 'slipway_upstream_ratelimit_remaining',
      help: "The upstream's latest RateLimit-Remaining: requests left in the current window",
      labelNames,
      registers,
    });
    this.#window = new Gauge({
      name: 'slipway_upstream_ratelimit_window_seconds',
      help: "The window of the upstream's latest RateLimit-Limit or RateLimit-Remaining (`w=`), in seconds",
      labelNames,
      registers,
    });
    this.#retryAfter = new Gauge({
      name: 'slipway_upstream_retry_after_seconds',
      help: 'The latest Retry-After the upstream sent: seconds to wait, from that answer',
      labelNames,
      registers,
    });
    this.#limited = new Counter({
      name: 'slipway_upstream_rate_limited_total',
      help: '429 Too Many Requests answers from the upstream (its registry, token realm or blob CDN)',
      labelNames,
      registers,
    });
  }

  /** An answer's rate-limit headers; a header it lacks leaves its gauge as it was. */
  observe(upstream: string, state: RateLimitState): void {
    const labels = { upstream };
    if (state.limit) this.#limit.set(labels, state.limit.value);
    if (state.remaining) this.#remaining.set(labels, state.remaining.value);
    const window = state.limit?.windowSeconds ?? state.remaining?.windowSeconds;
    if (window !== undefined) this.#window.set(labels, window);
    if (state.retryAfterSeconds !== undefined) this.#retryAfter.set(labels, state.retryAfterSeconds);
  }

  /** A 429 answer. */
  limited(upstream: string): void {
    this.#limited.inc({ upstream });
  }

  /** Drops the series of an upstream that was removed. */
  forget(upstream: string): void {
    for (const metric of [this.#limit, this.#remaining, this.#window, this.#retryAfter, this.#limited]) {
      metric.remove({ upstream });
    }
  }
}
