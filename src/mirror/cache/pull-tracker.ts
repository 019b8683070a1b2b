import type { Database } from '../../db/database.ts';
import type { Digest } from '../../registry/digest.ts';
import type { RepositoryName, TagName } from '../../registry/names.ts';
import { recordDigestPulls, recordTagPulls, type Pull } from './proxy-tags.ts';

export interface PullTrackerOptions {
  /** How often pulls seen since the last write are written. Default 5 s. */
  flushMs?: number;
}

export interface PullTrackerLogger {
  warn(details: object, message: string): void;
}

/** When each tag or digest was last pulled here, in epoch milliseconds, by `repository\0reference`. */
type Seen = Map<string, { repository: RepositoryName; reference: string; at: number }>;

/**
 * Remembers when cached tags and manifests were pulled, for least-recently-pulled eviction, without a
 * database write per pull: pulls are noted in memory and written in one statement per kind every few
 * seconds (and on `flush`), so a hot tag costs one row update per interval, however often it is pulled.
 * A crash loses at most an interval of pull times, which only makes eviction a little less exact.
 */
export class PullTracker {
  readonly #db: Database;
  readonly #flushMs: number;
  #tags: Seen = new Map();
  #digests: Seen = new Map();
  #writing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #logger: PullTrackerLogger | undefined;

  constructor(db: Database, options: PullTrackerOptions = {}) {
    this.#db = db;
    this.#flushMs = options.flushMs ?? 5_000;
  }

  /** Starts writing pulls every interval; failures are logged and the pulls kept for the next one. */
  start(logger?: PullTrackerLogger): void {
    this.#logger = logger;
    this.#timer ??= setInterval(() => {
      this.flush().catch((error: unknown) =>
        this.#logger?.warn({ err: error }, 'writing pull times of cached tags failed; retrying'),
      );
    }, this.#flushMs);
    this.#timer.unref();
  }

  tagPulled(repository: RepositoryName, tag: TagName): void {
    note(this.#tags, repository, tag);
  }

  digestPulled(repository: RepositoryName, digest: Digest): void {
    note(this.#digests, repository, digest);
  }

  /** Writes every pull noted so far; one flush at a time, the next after the one running. */
  flush(): Promise<void> {
    const run = this.#writing.then(() => this.#write());
    this.#writing = run.catch(() => {});
    return run;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  async #write(): Promise<void> {
    const tags = this.#tags;
    const digests = this.#digests;
    if (tags.size === 0 && digests.size === 0) return;
    this.#tags = new Map();
    this.#digests = new Map();
    const now = Date.now();
    try {
      await recordTagPulls(this.#db, pulls(tags, now));
      await recordDigestPulls(this.#db, pulls(digests, now));
    } catch (error) {
      // Kept for the next flush, unless pulled again meanwhile (a later time).
      for (const [key, seen] of tags) if (!this.#tags.has(key)) this.#tags.set(key, seen);
      for (const [key, seen] of digests) if (!this.#digests.has(key)) this.#digests.set(key, seen);
      throw error;
    }
  }
}

function note(seen: Seen, repository: RepositoryName, reference: string): void {
  seen.set(`${repository}\0${reference}`, { repository, reference, at: Date.now() });
}

function pulls(seen: Seen, now: number): Pull[] {
  return [...seen.values()].map(({ repository, reference, at }) => ({
    repository,
    reference,
    ageSeconds: Math.max(0, now - at) / 1000,
  }));
}
