import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { z } from 'zod';

const slipwayVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * What a live builder says of itself, under `<prefix>:builders:<name>`. The optional fields came later:
 * announcements written by builders of an earlier version lack them until those builders are upgraded.
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
 * Keeps a builder's announcement in Redis while it runs: a key whose expiry is renewed every
 * `intervalMs`, so a builder that vanishes disappears from the list within three intervals.
 */
export class BuilderPresence {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #intervalMs: number;
  readonly #announcement: () => BuilderSelfDescription;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: {
    redis: Redis;
    prefix: string;
    name: string;
    announcement: () => BuilderSelfDescription;
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
    const announcement: BuilderAnnouncement = {
      ...this.#announcement(),
      host: hostname(),
      pid: process.pid,
      version: slipwayVersion,
      heartbeatAt: new Date().toISOString(),
    };
    await this.#redis.set(this.#key, JSON.stringify(announcement), 'EX', ttlSeconds);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#redis.del(this.#key).catch(() => {});
  }
}

/** The builders announced under `prefix` now, by name; an announcement that cannot be read is left out. */
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
    .flatMap((value) => (value === null ? [] : [parseAnnouncement(value)]))
    .filter((announcement) => announcement !== null)
    .sort((a, b) => a.name.localeCompare(b.name));
}

function parseAnnouncement(value: string): BuilderAnnouncement | null {
  try {
    return announcementSchema.parse(JSON.parse(value));
  } catch {
    return null;
  }
}
