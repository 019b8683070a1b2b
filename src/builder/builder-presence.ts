import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ChainableCommander, Redis } from 'ioredis';
import { z } from 'zod';

const slipwayVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * What a live builder says of itself, under `<prefix>:builders:<name>`. The optional fields are added by
 * `BuilderPresence`; a reader shows what an announcement lacks as unknown.
 */
const announcementSchema = z.object({
  name: z.string(),
  concurrency: z.number(),
  executor: z.string(),
  startedAt: z.iso.datetime(),
  /** The builds it is running now. */
  running: z.array(z.string()),
  /** The machine it runs on. */
  host: z.string().optional(),
  pid: z.number().optional(),
  /** The Slipway version it runs. */
  version: z.string().optional(),
  /** When it last renewed its announcement. */
  heartbeatAt: z.iso.datetime().optional(),
});

export type BuilderAnnouncement = z.infer<typeof announcementSchema>;

/** What the builder itself says; the process it runs in and the time are added at each announcement. */
export type BuilderSelfDescription = Omit<BuilderAnnouncement, 'host' | 'pid' | 'version' | 'heartbeatAt'>;

export function builderKey(prefix: string, name: string): string {
  return `${prefix}:builders:${name}`;
}

/**
 * The names of the builders announced under `prefix`, each scored by when its announcement expires (ms
 * on the Redis server's clock), so listing them never walks the keyspace.
 */
function builderIndexKey(prefix: string): string {
  return `${prefix}:builders`;
}

/**
 * How much longer a name's score lasts than its key: the score is reckoned from a time read before the
 * key's expiry is set, and must not run out first.
 */
const indexSlackMs = 1000;

/**
 * Keeps a builder's announcement in Redis while it runs: a key whose expiry is renewed every
 * `intervalMs`, so a builder that vanishes disappears from the list within three intervals.
 */
export class BuilderPresence {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #indexKey: string;
  readonly #name: string;
  readonly #intervalMs: number;
  readonly #announcement: () => BuilderSelfDescription;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: {
    redis: Redis;
    prefix: string;
    name: string;
    announcement: () => BuilderSelfDescription;
    intervalMs?: number;
  }) {
    this.#redis = options.redis;
    this.#key = builderKey(options.prefix, options.name);
    this.#indexKey = builderIndexKey(options.prefix);
    this.#name = options.name;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#announcement = options.announcement;
  }

  async start(): Promise<void> {
    await this.announce();
    this.#timer = setInterval(() => void this.announce().catch(() => {}), this.#intervalMs);
    this.#timer.unref();
  }

  async announce(): Promise<void> {
    const ttlSeconds = Math.ceil((this.#intervalMs * 3) / 1000);
    const announcement: BuilderAnnouncement = {
      ...this.#announcement(),
      host: hostname(),
      pid: process.pid,
      version: slipwayVersion,
      heartbeatAt: new Date().toISOString(),
    };
    const now = await redisTime(this.#redis);
    // An announcement that was waiting for the time when the builder stopped would bring it back.
    if (this.#stopped) return;
    const expiresAt = now + ttlSeconds * 1000 + indexSlackMs;
    await execAll(
      this.#redis
        .multi()
        .set(this.#key, JSON.stringify(announcement), 'EX', ttlSeconds)
        .zadd(this.#indexKey, expiresAt, this.#name),
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#stopped = true;
    await execAll(this.#redis.multi().del(this.#key).zrem(this.#indexKey, this.#name)).catch(() => {});
  }
}

/** The builders announced under `prefix` now, by name; an announcement that cannot be read is left out. */
export async function liveBuilders(redis: Redis, prefix: string): Promise<BuilderAnnouncement[]> {
  const indexKey = builderIndexKey(prefix);
  const now = await redisTime(redis);
  // Pruning here keeps the index to the builders of the last few heartbeats, whoever reads it.
  const [, indexed] = await execAll(
    redis.multi().zremrangebyscore(indexKey, '-inf', now).zrangebyscore(indexKey, `(${now}`, '+inf'),
  );
  const keys = (indexed as string[]).map((name) => builderKey(prefix, name));
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  return values
    .flatMap((value) => (value === null ? [] : [parseAnnouncement(value)]))
    .filter((announcement) => announcement !== null)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The replies of a transaction, or the first error one of its commands met. */
async function execAll(transaction: ChainableCommander): Promise<unknown[]> {
  const replies = (await transaction.exec()) ?? [];
  const failed = replies.find(([error]) => error);
  if (failed) throw failed[0];
  return replies.map(([, reply]) => reply);
}

/** Now, in ms, by the Redis server's clock: builders and readers on other hosts may disagree. */
async function redisTime(redis: Redis): Promise<number> {
  const [seconds, microseconds] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(microseconds) / 1000);
}

function parseAnnouncement(value: string): BuilderAnnouncement | null {
  try {
    return announcementSchema.parse(JSON.parse(value));
  } catch {
    return null;
  }
}
