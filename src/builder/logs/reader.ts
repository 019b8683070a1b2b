import type { Redis } from 'ioredis';
import type { RedisConnection } from '../../db/redis.ts';
import type { Digest } from '../../registry/digest.ts';
import type { BuildLogArchive } from './archive.ts';
import { buildLogKey, fromStreamFields, isAfter, parseCursor, type BuildLogEntry } from './entry.ts';

export interface BuildLogReaderOptions {
  /** A shared client for non-blocking reads. */
  redis: Redis;
  /** Where each follower gets a connection of its own for XREAD BLOCK. */
  connection: Pick<RedisConnection, 'connect'>;
  keyPrefix: string;
  /** Where logs are read from once their stream has expired. */
  archive?: BuildLogArchive;
  /** The digest of the build's archived log, as kept on the build record; null while there is none. */
  archivedLogOf?: (buildId: string) => Promise<Digest | null | undefined>;
  /**
   * How long one XREAD blocks. Between blocks a follower checks whether the stream expired under it
   * (then the rest is in the archive). Default 5000.
   */
  blockMs?: number;
}

export interface BuildLogPage {
  /** In order, each after the cursor given. */
  entries: BuildLogEntry[];
  /** The id of the last entry returned, or the cursor given when there was none: pass it to the next read. */
  cursor: string;
}

const defaultLimit = 1000;
const maxLimit = 10_000;

/**
 * Reads build logs from Redis, or from the archive once the stream is gone, with the same entries and
 * cursors either way. `follow` returns everything after the cursor, then live entries, until the end.
 */
export class BuildLogReader {
  readonly #redis: Redis;
  readonly #connection: Pick<RedisConnection, 'connect'>;
  readonly #keyPrefix: string;
  readonly #archive: BuildLogArchive | undefined;
  readonly #archivedLogOf: BuildLogReaderOptions['archivedLogOf'];
  readonly #blockMs: number;

  constructor(options: BuildLogReaderOptions) {
    this.#redis = options.redis;
    this.#connection = options.connection;
    this.#keyPrefix = options.keyPrefix;
    this.#archive = options.archive;
    this.#archivedLogOf = options.archivedLogOf;
    this.#blockMs = options.blockMs ?? 5000;
  }

  /** At most `limit` entries after `cursor` ('0' or absent: from the start). */
  async read(buildId: string, cursor?: string, limit = defaultLimit): Promise<BuildLogPage> {
    const key = buildLogKey(this.#keyPrefix, buildId);
    const after = parseCursor(cursor);
    const count = Math.min(Math.max(Math.trunc(limit), 1), maxLimit);
    const page = await this.#redis.xrange(key, exclusiveStart(after), '+', 'COUNT', count);
    if (page.length) {
      return { entries: page.map(([id, fields]) => fromStreamFields(id, fields)), cursor: page.at(-1)![0] };
    }
    if (await this.#redis.exists(key)) return { entries: [], cursor: after };
    const entries: BuildLogEntry[] = [];
    for await (const entry of this.#archivedAfter(buildId, after)) {
      entries.push(entry);
      if (entries.length === count) break;
    }
    return { entries, cursor: entries.at(-1)?.id ?? after };
  }

  /**
   * Every entry after `cursor`, then each new one as it is written, ending after the `end` entry or
   * when `signal` aborts (the blocking connection is closed at once, and iteration simply stops).
   */
  async *follow(buildId: string, cursor?: string, signal?: AbortSignal): AsyncGenerator<BuildLogEntry> {
    const key = buildLogKey(this.#keyPrefix, buildId);
    let after = parseCursor(cursor);

    for (;;) {
      if (signal?.aborted) return;
      const page = await this.read(buildId, after, defaultLimit);
      for (const entry of page.entries) {
        if (signal?.aborted) return;
        yield entry;
        if (entry.type === 'end') return;
      }
      after = page.cursor;
      if (page.entries.length < defaultLimit) break;
    }

    if (signal?.aborted) return;
    const blocking = this.#connection.connect();
    const release = () => blocking.disconnect();
    signal?.addEventListener('abort', release, { once: true });
    try {
      // Named so that operators can tell followers apart in CLIENT LIST.
      blocking.client('SETNAME', `slipway-log-follow:${buildId}`).catch(() => {});
      for (;;) {
        let reply;
        try {
          reply = await blocking.xread('COUNT', defaultLimit, 'BLOCK', this.#blockMs, 'STREAMS', key, after);
        } catch (error) {
          if (signal?.aborted) return;
          throw error;
        }
        if (signal?.aborted) return;
        if (!reply) {
          if (await this.#redis.exists(key)) continue;
          const digest = await this.#archivedLogOf?.(buildId);
          if (!digest) continue; // Not written yet, or archived but not yet recorded.
          for await (const entry of this.#archivedAfter(buildId, after)) {
            if (signal?.aborted) return;
            yield entry;
          }
          return;
        }
        for (const [id, fields] of reply[0]?.[1] ?? []) {
          const entry = fromStreamFields(id, fields);
          after = id;
          yield entry;
          if (entry.type === 'end') return;
        }
      }
    } finally {
      signal?.removeEventListener('abort', release);
      blocking.disconnect();
    }
  }

  async *#archivedAfter(buildId: string, cursor: string): AsyncGenerator<BuildLogEntry> {
    if (!this.#archive || !this.#archivedLogOf) return;
    const digest = await this.#archivedLogOf(buildId);
    if (!digest) return;
    for await (const entry of this.#archive.readArchived(digest)) {
      if (isAfter(entry.id, cursor)) yield entry;
    }
  }
}

function exclusiveStart(cursor: string): string {
  return cursor === '0' ? '-' : `(${cursor}`;
}
