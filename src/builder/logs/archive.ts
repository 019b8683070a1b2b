import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { Redis } from 'ioredis';
import { createDigester, finishDigest, type Digest } from '../../registry/digest.ts';
import type { BlobDriver } from '../../registry/storage/driver.ts';
import { buildLogKey, fromStreamFields, isBuildLogEntry, type BuildLogEntry } from './entry.ts';

export interface BuildLogArchiveOptions {
  /** A shared client; archiving only reads pages of the stream and sets its expiry. */
  redis: Redis;
  keyPrefix: string;
  driver: BlobDriver;
  /** How long the stream stays in Redis once archived, so followers still attached finish. Default 600. */
  streamExpirySeconds?: number;
  /** Entries read from the stream per round trip. Default 1000. */
  pageSize?: number;
}

export interface ArchivedBuildLog {
  /** The gzip's sha256; the build record keeps it to find the log once the stream has expired. */
  digest: Digest;
  /** Compressed size in bytes. */
  size: number;
  entries: number;
}

/**
 * Moves a finished build's log from its Redis stream to blob storage as gzip-compressed NDJSON, one
 * entry per line in the shape readers return. Storage is content-addressed, so the archive is stored
 * under its own digest; archiving the same stream twice stores the same bytes under the same digest.
 */
export class BuildLogArchive {
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #driver: BlobDriver;
  readonly #streamExpirySeconds: number;
  readonly #pageSize: number;

  constructor(options: BuildLogArchiveOptions) {
    this.#redis = options.redis;
    this.#keyPrefix = options.keyPrefix;
    this.#driver = options.driver;
    this.#streamExpirySeconds = options.streamExpirySeconds ?? 600;
    this.#pageSize = options.pageSize ?? 1000;
  }

  /** Stores the whole stream, then lets it expire. Fails when the build has no log stream. */
  async archive(buildId: string): Promise<ArchivedBuildLog> {
    const key = buildLogKey(this.#keyPrefix, buildId);
    if (!(await this.#redis.exists(key))) {
      throw new Error(`build ${buildId} has no log stream to archive (never written, or expired)`);
    }
    let entries = 0;
    const ndjson = Readable.from(
      (async function* (redis: Redis, pageSize: number) {
        let start = '-';
        for (;;) {
          const page = await redis.xrange(key, start, '+', 'COUNT', pageSize);
          for (const [id, fields] of page) {
            entries++;
            yield `${JSON.stringify(fromStreamFields(id, fields))}\n`;
          }
          if (page.length < pageSize) return;
          start = `(${page.at(-1)![0]}`;
        }
      })(this.#redis, this.#pageSize),
    );
    const hash = createDigester('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    const upload = await this.#driver.openUpload(randomUUID());
    let digest: Digest;
    try {
      const packing = pipeline(ndjson, createGzip(), hashing);
      packing.catch(() => {}); // Awaited below; a failure also ends the append, which destroys `hashing`.
      await upload.append(hashing);
      await packing;
      digest = finishDigest(hash, 'sha256');
      await upload.commit(digest);
    } catch (error) {
      await upload.abort().catch(() => {});
      throw error;
    }
    await this.#redis.expire(key, this.#streamExpirySeconds);
    return { digest, size: upload.size, entries };
  }

  /** The archived entries in order, decompressed as they are read. */
  async *readArchived(digest: Digest): AsyncGenerator<BuildLogEntry> {
    const compressed = await this.#driver.read(digest);
    const gunzip = createGunzip();
    const piping = pipeline(compressed, gunzip);
    piping.catch(() => {}); // The same failure surfaces through the line reader below.
    const lines = createInterface({ input: gunzip, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line === '') continue;
        const entry: unknown = JSON.parse(line);
        if (!isBuildLogEntry(entry)) throw new Error(`archived build log ${digest} holds a malformed entry`);
        yield entry;
      }
      await piping;
    } finally {
      lines.close();
      compressed.destroy();
    }
  }
}
