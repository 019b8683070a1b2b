import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { openRedis, type RedisConnection } from '../../src/db/redis.ts';
import { freePort } from '../helpers/gateway-process.ts';

describe('finding Redis', () => {
  const opened: RedisConnection[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const c of opened.splice(0).reverse()) await c.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-redis-test-'));
    dirs.push(dir);
    return dir;
  }

  async function closedUrl(): Promise<string> {
    return `redis://127.0.0.1:${await freePort()}`;
  }

  it('uses REDIS_URL when it answers', async () => {
    const redis = await openRedis({ url: inject('redisUrl'), dataDir: await dataDir() });
    opened.push(redis);
    expect(redis.origin).toBe('configured');
    expect(await redis.connect().ping()).toBe('PONG');
  });

  it('fails on an unreachable REDIS_URL, naming it without its password, instead of starting its own', async () => {
    const url = (await closedUrl()).replace('//', '//user:hunter2@');
    const error = await openRedis({ url, dataDir: await dataDir() }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /cannot reach Redis at REDIS_URL redis:\/\/user:\*\*\*@127\.0\.0\.1/,
    );
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('starts a redis-server of its own on a socket in the data directory when nothing answers, and stops it on close', async () => {
    const dir = await dataDir();
    const redis = await openRedis({ defaultUrl: await closedUrl(), dataDir: dir });
    expect(redis.origin).toBe('embedded');
    expect(redis.location).toBe(join(dir, 'redis', 'redis.sock'));
    const client = redis.connect();
    await client.set('k', 'v');
    expect(await client.get('k')).toBe('v');
    expect((await stat(join(dir, 'redis'))).mode & 0o077).toBe(0);

    // A second process on the same data directory uses the running server rather than a new one.
    const second = await openRedis({ defaultUrl: await closedUrl(), dataDir: dir });
    expect(await second.connect().get('k')).toBe('v');
    await second.close();
    expect(await redis.connect().get('k')).toBe('v');

    await redis.close();
    const probe = await openRedis({
      defaultUrl: await closedUrl(),
      dataDir: dir,
      serverCommand: 'no-such-redis-server',
    }).catch((e: Error) => e);
    expect(probe).toBeInstanceOf(Error);
  });

  it('says what to install or set when there is no Redis and no redis-server', async () => {
    const error = await openRedis({
      defaultUrl: await closedUrl(),
      dataDir: await dataDir(),
      serverCommand: 'no-such-redis-server',
    }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(
      /set REDIS_URL.*127\.0\.0\.1:6379.*apt-get install redis-server/,
    );
  });
});
