import type { MirrorStore, MirrorWriter } from './mirror-store.ts';

export interface MirrorGuardOptions {
  store: Pick<MirrorStore, 'revision' | 'writers'>;
  /** How often to look for mirrors added or removed through other replicas. Default 5 s. */
  pollMs?: number;
}

/**
 * Keeps mirrored repositories read-only to everyone but their robot, without a database read per
 * registry request: the mirrored repositories are held in memory and reloaded when the store's
 * revision moves (a change made through this replica applies at once, one made elsewhere within a
 * poll interval).
 */
export class MirrorGuard {
  readonly #store: MirrorGuardOptions['store'];
  readonly #pollMs: number;
  #writers = new Map<string, MirrorWriter>();
  #revision = -1;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MirrorGuardOptions) {
    this.#store = options.store;
    this.#pollMs = options.pollMs ?? 5_000;
  }

  /** Loads the mirrored repositories, then keeps looking for changes. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh().catch(() => {}), this.#pollMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Reloads the mirrored repositories when any changed since the last load. */
  async refresh(): Promise<void> {
    const revision = await this.#store.revision();
    if (revision === this.#revision) return;
    const writers = await this.#store.writers();
    this.#writers = new Map(writers.map((writer) => [writer.repository, writer]));
    this.#revision = revision;
  }

  /** Why `actor` may not push to or delete from the repository, or null when it may. */
  writeRefusal(repository: string, actor: string | null): string | null {
    const writer = this.#writers.get(repository);
    if (!writer || (actor !== null && actor === writer.robot)) return null;
    const only = writer.robot
      ? `only its robot ${writer.robot} may write`
      : 'only its robot may write, and it has none: set one with slipway mirror';
    return `${repository} is a mirror of ${writer.upstream}; ${only}`;
  }
}
