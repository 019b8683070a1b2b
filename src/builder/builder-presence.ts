import type { Redis } from 'ioredis';

/** What a live builder says of itself, under `<prefix>:builders:<name>`. */
export interface BuilderAnnouncement {
  name: string;
  concurrency: number;
  executor: string;
  startedAt: string;
  /** The builds it is running now. */
  running: string[];
}

export function builderKey(prefix: string, name: string): string {
  return `${prefix}:builders:${name}`;
}

/**
 * Keeps a builder's announcement in Redis while it runs: a key whose expiry is renewed every
 * `intervalMs`, so a builder that vanishes disappears from the list within three intervals.
 */
export class BuilderPresence {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #intervalMs: number;
  readonly #announcement: () => BuilderAnnouncement;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: {
    redis: Redis;
    prefix: string;
    name: string;
    announcement: () => BuilderAnnouncement;
    intervalMs?: number;
  }) {
    this.#redis = options.redis;
    this.#key = builderKey(options.prefix, options.name);
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
    await this.#redis.set(this.#key, JSON.stringify(this.#announcement()), 'EX', ttlSeconds);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#redis.del(this.#key).catch(() => {});
  }
}

/** The builders announced under `prefix` now. */
export async function liveBuilders(redis: Redis, prefix: string): Promise<BuilderAnnouncement[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', builderKey(prefix, '*'), 'COUNT', 200);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  return values
    .filter((value): value is string => value !== null)
    .map((value) => JSON.parse(value) as BuilderAnnouncement);
}
