import { UpstreamClient, type UpstreamClientOptions } from '../upstream/client.ts';
import { dockerHubRepository } from '../upstream/names.ts';
import { parseRepositoryName, type RepositoryName } from '../../registry/names.ts';
import type { RateLimitMetrics } from './metrics.ts';

/** One upstream registry as the cache uses it. */
export interface ProxyUpstream {
  /** The namespace clients pull through, e.g. `dockerhub`. */
  name: string;
  /** The registry's origin, e.g. https://registry-1.docker.io. */
  url: string;
  /** Registry host names routed here by containerd's `?ns=`. */
  hosts: readonly string[];
  client: UpstreamClient;
  freshnessSeconds: number;
  staleIfError: boolean;
  /** Serve a cached tag the upstream answers "not found" for, rather than MANIFEST_UNKNOWN. */
  staleIfDeleted: boolean;
  negativeTtlSeconds: number;
  /** Who may pull through it. */
  pull: PullPolicy;
  /** Where it is declared: the config file (read-only through the API), or the API. */
  source: UpstreamSource;
  /** Bytes its cached repositories may hold before the least recently pulled tags are evicted; null: no limit. */
  storageBudget: number | null;
  /** Tag globs (`v*`) and `repository:tag` globs never evicted. */
  pinned: readonly string[];
  /** Everything it was made from. */
  settings: UpstreamSettings;
}

/** Anyone (anonymous included), any signed-in account, or the members and robots of an organization. */
export type PullPolicy = 'anonymous' | 'users' | `org:${string}`;

export type UpstreamSource = 'config' | 'api';

export interface UpstreamSettings {
  name: string;
  url: string;
  hosts: readonly string[];
  username?: string | undefined;
  password?: string | undefined;
  tlsVerify: boolean;
  freshness: number;
  staleIfError: boolean;
  staleIfDeleted: boolean;
  negativeTtl: number;
  maxConnections: number;
  /** Seconds to wait for an answer to start. */
  timeout: number;
  circuitBreaker: { failures: number; cooldown: number };
  pull: PullPolicy;
  /** Bytes; unlimited when absent. */
  storageBudget?: number | undefined;
  pinned?: readonly string[] | undefined;
}

/** A repository name resolved to its upstream. */
export interface ProxyRoute {
  upstream: ProxyUpstream;
  /** The name on the upstream, e.g. `library/nginx` for `dockerhub/nginx` on Docker Hub. */
  remote: string;
}

export interface ProxyUpstreamsOptions {
  /** Where what the upstreams say about their rate limits is exported. */
  rateLimits?: RateLimitMetrics;
}

type RateLimitHooks = Pick<UpstreamClientOptions, 'onRateLimit' | 'onRateLimited'>;

/** Docker Hub's registry host names: names there get the implicit `library/`. */
const dockerHubHosts = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * The upstreams, and which repository names belong to them: those whose first component is an
 * upstream's name (`dockerhub/library/nginx`), and, for containerd's `?ns=docker.io`, names asked for
 * on behalf of one of an upstream's hosts. Those of the config file are fixed; those managed through
 * the API are replaced whenever they change (`replaceManaged`), keeping the client, its connections
 * and its tokens of every upstream whose settings did not change.
 */
export class ProxyUpstreams {
  readonly #configured: readonly UpstreamSettings[];
  readonly #rateLimits: RateLimitMetrics | undefined;
  #byName = new Map<string, ProxyUpstream>();
  #byHost = new Map<string, ProxyUpstream>();

  constructor(configured: readonly UpstreamSettings[], options: ProxyUpstreamsOptions = {}) {
    this.#configured = configured;
    this.#rateLimits = options.rateLimits;
    this.replaceManaged([]);
  }

  /** Takes the API-managed upstreams as they now are. */
  replaceManaged(managed: readonly UpstreamSettings[]): void {
    const previous = this.#byName;
    const byName = new Map<string, ProxyUpstream>();
    const byHost = new Map<string, ProxyUpstream>();
    const declared = [
      ...this.#configured.map((settings) => ({ settings, source: 'config' as const })),
      ...managed.map((settings) => ({ settings, source: 'api' as const })),
    ];
    for (const { settings, source } of declared) {
      if (byName.has(settings.name)) continue;
      const kept = previous.get(settings.name);
      const upstream =
        kept && kept.source === source && sameSettings(kept.settings, settings)
          ? kept
          : createUpstream(settings, source, this.#rateLimitHooks(settings.name));
      byName.set(settings.name, upstream);
      for (const host of settings.hosts) {
        if (!byHost.has(host.toLowerCase())) byHost.set(host.toLowerCase(), upstream);
      }
    }
    this.#byName = byName;
    this.#byHost = byHost;
    for (const [name, upstream] of previous) {
      // Requests under way finish first: closing an undici agent waits for them.
      if (byName.get(name) !== upstream) void upstream.client.close().catch(() => {});
      if (!byName.has(name)) this.#rateLimits?.forget(name);
    }
  }

  /** Exports what the upstream's answers say of its rate limit, for as long as it is one of these. */
  #rateLimitHooks(name: string): RateLimitHooks {
    const metrics = this.#rateLimits;
    if (!metrics) return {};
    // A removed upstream's requests still under way must not bring its series back.
    const current = () => this.#byName.has(name);
    return {
      onRateLimit: (state) => {
        if (current()) metrics.observe(name, state);
      },
      onRateLimited: () => {
        if (current()) metrics.limited(name);
      },
    };
  }

  /** The namespaces that are pull-through caches. */
  get namespaces(): ReadonlySet<string> {
    return new Set(this.#byName.keys());
  }

  get(name: string): ProxyUpstream | undefined {
    return this.#byName.get(name);
  }

  list(): ProxyUpstream[] {
    return [...this.#byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The upstream a repository name belongs to, or null for an ordinary repository. */
  route(repository: RepositoryName): ProxyRoute | null {
    const slash = repository.indexOf('/');
    if (slash < 0) return null;
    const upstream = this.#byName.get(repository.slice(0, slash));
    if (!upstream) return null;
    const rest = repository.slice(slash + 1);
    const isDockerHub = upstream.hosts.some((host) => dockerHubHosts.has(host));
    return { upstream, remote: isDockerHub ? dockerHubRepository(rest) : rest };
  }

  /**
   * The local name for a repository asked for with containerd's `?ns=<host>`: under the upstream
   * that serves that host (`library/nginx` with `ns=docker.io` is `dockerhub/library/nginx`), or
   * unchanged when no upstream serves it.
   */
  nameFor(repository: RepositoryName, ns: string | undefined): RepositoryName {
    if (!ns) return repository;
    const upstream = this.#byHost.get(ns.toLowerCase());
    if (!upstream) return repository;
    return parseRepositoryName(`${upstream.name}/${repository}`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#byName.values()].map((u) => u.client.close()));
  }
}

function createUpstream(s: UpstreamSettings, source: UpstreamSource, hooks: RateLimitHooks): ProxyUpstream {
  return {
    name: s.name,
    url: s.url,
    hosts: s.hosts,
    client: new UpstreamClient({
      url: s.url,
      name: s.name,
      tlsVerify: s.tlsVerify,
      maxConnections: s.maxConnections,
      timeouts: { headersMs: s.timeout * 1000, connectMs: Math.min(s.timeout * 1000, 5_000) },
      circuitBreaker: {
        failureThreshold: s.circuitBreaker.failures,
        cooldownMs: s.circuitBreaker.cooldown * 1000,
      },
      ...(s.username !== undefined && s.password !== undefined
        ? { credentials: { username: s.username, password: s.password } }
        : {}),
      ...hooks,
    }),
    freshnessSeconds: s.freshness,
    staleIfError: s.staleIfError,
    staleIfDeleted: s.staleIfDeleted,
    negativeTtlSeconds: s.negativeTtl,
    pull: s.pull,
    storageBudget: s.storageBudget ?? null,
    pinned: s.pinned ?? [],
    source,
    settings: s,
  };
}

function sameSettings(a: UpstreamSettings, b: UpstreamSettings): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
