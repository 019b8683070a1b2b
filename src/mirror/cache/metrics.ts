import { Counter, Gauge, type Registry } from 'prom-client';

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
