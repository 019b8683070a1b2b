import { RevisionFollower } from '../../db/revision-follower.ts';
import { conflict, invalid, notFound } from '../../errors.ts';
import type { StoredUpstream, UpstreamChanges, UpstreamStore } from './upstream-store.ts';
import type { ProxyUpstream, ProxyUpstreams, UpstreamSettings } from './upstreams.ts';

export interface UpstreamCatalogOptions {
  upstreams: ProxyUpstreams;
  store: UpstreamStore;
  /** Whether a user or organization of that name exists: its namespace cannot be an upstream's. */
  namespaceTaken: (name: string) => Promise<boolean>;
  /** How often to look for changes made through other replicas. Default 5 s. */
  pollMs?: number;
}

/** An upstream as the API shows it: what it is, where it comes from, and how it is doing. */
export interface UpstreamView {
  upstream: ProxyUpstream;
  stored: StoredUpstream | null;
}

/**
 * The upstreams of the config file plus those managed through the API, kept the same on every
 * replica: a change made here applies at once, one made elsewhere within a poll interval.
 */
export class UpstreamCatalog {
  readonly #upstreams: ProxyUpstreams;
  readonly #store: UpstreamStore;
  readonly #namespaceTaken: (name: string) => Promise<boolean>;
  readonly #follower: RevisionFollower;

  constructor(options: UpstreamCatalogOptions) {
    this.#upstreams = options.upstreams;
    this.#store = options.store;
    this.#namespaceTaken = options.namespaceTaken;
    this.#follower = new RevisionFollower({
      revision: () => this.#store.revision(),
      reload: async () => {
        const stored = await this.#store.list();
        this.#upstreams.replaceManaged(stored.map((s) => s.settings));
      },
      pollMs: options.pollMs,
    });
  }

  /** Loads the managed upstreams, then keeps looking for changes. */
  start(): Promise<void> {
    return this.#follower.start();
  }

  stop(): void {
    this.#follower.stop();
  }

  /** Reloads the managed upstreams when any changed since the last load. */
  refresh(): Promise<void> {
    return this.#follower.refresh();
  }

  async list(): Promise<UpstreamView[]> {
    const stored = new Map((await this.#store.list()).map((s) => [s.settings.name, s]));
    return this.#upstreams
      .list()
      .map((upstream) => ({ upstream, stored: stored.get(upstream.name) ?? null }));
  }

  async get(name: string): Promise<UpstreamView> {
    const upstream = this.#upstreams.get(name);
    if (!upstream) throw notFound(`there is no upstream named ${name}`);
    return { upstream, stored: await this.#store.get(name) };
  }

  async create(settings: UpstreamSettings, createdBy: string | null): Promise<UpstreamView> {
    await this.refresh();
    if (this.#upstreams.get(settings.name)) throw conflict(`an upstream named ${settings.name} exists`);
    if (await this.#namespaceTaken(settings.name)) {
      throw conflict(
        `${settings.name} is a user or organization namespace; an upstream's name becomes a namespace of its own`,
      );
    }
    this.#checkHosts(settings.name, settings.hosts);
    if (!(await this.#store.create(settings, createdBy))) {
      throw conflict(`an upstream named ${settings.name} exists`);
    }
    await this.refresh();
    return this.get(settings.name);
  }

  async update(name: string, changes: UpstreamChanges): Promise<UpstreamView> {
    await this.refresh();
    this.#requireManaged(name);
    if (changes.hosts) this.#checkHosts(name, changes.hosts);
    if ((changes.username === undefined) !== (changes.password === undefined) && changes.password !== null) {
      throw invalid('give both username and password, or password null to remove the credentials');
    }
    if (!(await this.#store.update(name, changes))) throw notFound(`there is no upstream named ${name}`);
    await this.refresh();
    return this.get(name);
  }

  async delete(name: string): Promise<void> {
    await this.refresh();
    this.#requireManaged(name);
    if (!(await this.#store.delete(name))) throw notFound(`there is no upstream named ${name}`);
    await this.refresh();
  }

  #requireManaged(name: string): void {
    const upstream = this.#upstreams.get(name);
    if (!upstream) throw notFound(`there is no upstream named ${name}`);
    if (upstream.source === 'config') {
      throw conflict(`upstream ${name} is declared in the config file: change it there and restart`);
    }
  }

  #checkHosts(name: string, hosts: readonly string[]): void {
    for (const host of hosts) {
      const other = this.#upstreams
        .list()
        .find((u) => u.name !== name && u.hosts.includes(host.toLowerCase()));
      if (other) throw conflict(`host ${host} is routed to upstream ${other.name} already`);
    }
  }
}
