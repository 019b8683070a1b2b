import { UpstreamClient } from '../upstream/client.ts';
import { dockerHubRepository } from '../upstream/names.ts';
import { parseRepositoryName, type RepositoryName } from '../../registry/names.ts';

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
  negativeTtlSeconds: number;
}

export interface UpstreamSettings {
  name: string;
  url: string;
  hosts: readonly string[];
  username?: string | undefined;
  password?: string | undefined;
  tlsVerify: boolean;
  freshness: number;
  staleIfError: boolean;
  negativeTtl: number;
  maxConnections: number;
  /** Seconds to wait for an answer to start. */
  timeout: number;
  circuitBreaker: { failures: number; cooldown: number };
}

/** A repository name resolved to its upstream. */
export interface ProxyRoute {
  upstream: ProxyUpstream;
  /** The name on the upstream, e.g. `library/nginx` for `dockerhub/nginx` on Docker Hub. */
  remote: string;
}

/** Docker Hub's registry host names: names there get the implicit `library/`. */
const dockerHubHosts = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * The configured upstreams, and which repository names belong to them: those whose first component
 * is an upstream's name (`dockerhub/library/nginx`), and, for containerd's `?ns=docker.io`, names
 * asked for on behalf of one of an upstream's hosts.
 */
export class ProxyUpstreams {
  readonly #byName = new Map<string, ProxyUpstream>();
  readonly #byHost = new Map<string, ProxyUpstream>();

  constructor(settings: readonly UpstreamSettings[]) {
    for (const s of settings) {
      const upstream: ProxyUpstream = {
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
        }),
        freshnessSeconds: s.freshness,
        staleIfError: s.staleIfError,
        negativeTtlSeconds: s.negativeTtl,
      };
      this.#byName.set(s.name, upstream);
      for (const host of s.hosts) this.#byHost.set(host.toLowerCase(), upstream);
    }
  }

  /** The namespaces that are pull-through caches. */
  get namespaces(): ReadonlySet<string> {
    return new Set(this.#byName.keys());
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
