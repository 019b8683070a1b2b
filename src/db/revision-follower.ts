export interface RevisionFollowerOptions {
  /** The current revision of what is followed: a counter every change moves. */
  revision: () => Promise<number>;
  /** Loads what is followed again; called when the revision moved. */
  reload: () => Promise<void>;
  /** How often to look for changes made through other replicas. Default 5 s. */
  pollMs?: number;
}

/**
 * Keeps an in-memory copy of database state the same on every replica with one cheap read per poll:
 * the copy is reloaded only when the revision moved. A change made through this replica calls
 * `refresh` and applies at once; one made elsewhere, within a poll interval.
 */
export class RevisionFollower {
  readonly #options: RevisionFollowerOptions;
  #revision = -1;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RevisionFollowerOptions) {
    this.#options = options;
  }

  /** Loads, then keeps looking for changes. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh().catch(() => {}), this.#options.pollMs ?? 5_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Reloads when anything changed since the last load. */
  async refresh(): Promise<void> {
    const revision = await this.#options.revision();
    if (revision === this.#revision) return;
    await this.#options.reload();
    this.#revision = revision;
  }
}
