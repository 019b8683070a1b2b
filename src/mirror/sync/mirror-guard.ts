import { RevisionFollower } from '../../db/revision-follower.ts';
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
  #writers = new Map<string, MirrorWriter>();
  readonly #follower: RevisionFollower;

  constructor(options: MirrorGuardOptions) {
    const { store } = options;
    this.#follower = new RevisionFollower({
      revision: () => store.revision(),
      reload: async () => {
        const writers = await store.writers();
        this.#writers = new Map(writers.map((writer) => [writer.repository, writer]));
      },
      pollMs: options.pollMs,
    });
  }

  /** Loads the mirrored repositories, then keeps looking for changes. */
  start(): Promise<void> {
    return this.#follower.start();
  }

  stop(): void {
    this.#follower.stop();
  }

  /** Reloads the mirrored repositories when any changed since the last load. */
  refresh(): Promise<void> {
    return this.#follower.refresh();
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
