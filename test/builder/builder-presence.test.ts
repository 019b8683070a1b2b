import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BuilderPresence, builderKey, liveBuilders } from '../../src/builder/builder-presence.ts';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.ts';

/**
 * BuilderPresence and liveBuilders on a redis-server of their own, so that its command statistics
 * count only what they do.
 */
describe('builder presence in Redis', () => {
  let server: ThrowawayRedis;
  let redis: Redis;

  beforeAll(async () => {
    server = await startThrowawayRedis();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const started: BuilderPresence[] = [];

  afterEach(async () => {
    await Promise.all(started.splice(0).map((builder) => builder.stop()));
  });

  const freshPrefix = () => `slipway:${randomUUID()}`;

  const presence = (prefix: string, name: string, intervalMs?: number) => {
    const builder = new BuilderPresence({
      redis,
      prefix,
      name,
      announcement: () => ({
        name,
        concurrency: 2,
        executor: 'buildah',
        startedAt: new Date().toISOString(),
        running: [],
      }),
      ...(intervalMs && { intervalMs }),
    });
    started.push(builder);
    return builder;
  };

  const namesLive = async (prefix: string) => (await liveBuilders(redis, prefix)).map(({ name }) => name);

  const indexed = (prefix: string) => redis.zrangebyscore(`${prefix}:builders`, '-inf', '+inf');

  /** SCAN commands the server has run since its statistics were last reset. */
  const scansSinceReset = async () => {
    const match = /^cmdstat_scan:calls=(\d+)/m.exec(await redis.info('commandstats'));
    return match ? Number(match[1]) : 0;
  };

  /** Keys of other kinds, as build logs, queues and caches leave them, under the same prefix. */
  const fillKeyspace = async (prefix: string, count: number) => {
    for (let start = 0; start < count; start += 1000) {
      const pairs = Array.from({ length: Math.min(1000, count - start) }, (_, i) => [
        `${prefix}:build-log:${start + i}`,
        'x',
      ]).flat();
      await redis.mset(...pairs);
    }
  };

  it('lists an announced builder, and drops it from the list and the index at once on a clean stop', async () => {
    const prefix = freshPrefix();
    const builder = presence(prefix, 'builder-one');
    await builder.start();
    try {
      expect(await liveBuilders(redis, prefix)).toEqual([
        expect.objectContaining({
          name: 'builder-one',
          concurrency: 2,
          executor: 'buildah',
          pid: process.pid,
        }),
      ]);
      expect(await indexed(prefix)).toEqual(['builder-one']);
    } finally {
      await builder.stop();
    }
    expect(await namesLive(prefix)).toEqual([]);
    expect(await indexed(prefix)).toEqual([]);
    expect(await redis.exists(builderKey(prefix, 'builder-one'))).toBe(0);
  });

  it('drops a builder whose announcement lapsed, and its name leaves the index', async () => {
    const prefix = freshPrefix();
    // Announced once and never renewed, as by a builder that vanished: its key lives 1 s.
    await presence(prefix, 'vanished', 300).announce();
    await presence(prefix, 'steady').start();
    expect(await namesLive(prefix)).toEqual(['steady', 'vanished']);
    await sleep(2_200);
    expect(await namesLive(prefix)).toEqual(['steady']);
    expect(await indexed(prefix)).toEqual(['steady']);
  });

  it('lists the builders without walking the keyspace', async () => {
    const prefix = freshPrefix();
    await fillKeyspace(prefix, 20_000);
    await presence(prefix, 'builder-a').start();
    await presence(prefix, 'builder-b').start();
    await redis.config('RESETSTAT');
    for (let i = 0; i < 10; i++) {
      expect(await namesLive(prefix)).toEqual(['builder-a', 'builder-b']);
    }
    await presence(prefix, 'builder-c').start();
    expect(await namesLive(prefix)).toEqual(['builder-a', 'builder-b', 'builder-c']);
    expect(await scansSinceReset()).toBe(0);
  });
});
