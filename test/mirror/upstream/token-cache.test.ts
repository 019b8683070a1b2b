import { describe, expect, it } from 'vitest';
import { TokenCache, usableMilliseconds } from '../../../src/mirror/upstream/token-cache.ts';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('token cache', () => {
  it('shares one fetch among concurrent requests of a key, and not across keys', async () => {
    const cache = new TokenCache();
    const pending = deferred<{ token: string; lifetimeSeconds: number }>();
    let fetches = 0;
    const fetch = () => {
      fetches++;
      return pending.promise;
    };
    const waiting = Array.from({ length: 10 }, () => cache.obtain('a', fetch));
    const other = cache.obtain('b', () => Promise.resolve({ token: 'b1', lifetimeSeconds: 60 }));
    pending.resolve({ token: 'a1', lifetimeSeconds: 60 });
    expect(await Promise.all(waiting)).toEqual(Array(10).fill('a1'));
    expect(await other).toBe('b1');
    expect(fetches).toBe(1);
    expect(await cache.obtain('a', fetch)).toBe('a1');
    expect(fetches).toBe(1);
  });

  it('offers a token until shortly before it expires, then fetches a new one', async () => {
    let now = 1_000_000;
    const cache = new TokenCache(() => now);
    let issued = 0;
    const fetch = () => Promise.resolve({ token: `t${++issued}`, lifetimeSeconds: 300 });
    expect(await cache.obtain('k', fetch)).toBe('t1');
    now += 269_000;
    expect(await cache.obtain('k', fetch)).toBe('t1');
    now += 2_000; // 271 s: within the last 30 s of its 300
    expect(cache.peek('k')).toBeUndefined();
    expect(await cache.obtain('k', fetch)).toBe('t2');
  });

  it('does not remember a failed fetch', async () => {
    const cache = new TokenCache();
    await expect(cache.obtain('k', () => Promise.reject(new Error('realm down')))).rejects.toThrow(
      'realm down',
    );
    expect(await cache.obtain('k', () => Promise.resolve({ token: 't', lifetimeSeconds: 60 }))).toBe('t');
  });

  it('forgets a refused token, but not a newer one fetched meanwhile', async () => {
    const cache = new TokenCache();
    let issued = 0;
    const fetch = () => Promise.resolve({ token: `t${++issued}`, lifetimeSeconds: 60 });
    await cache.obtain('k', fetch);
    cache.invalidate('k', 't1');
    expect(await cache.obtain('k', fetch)).toBe('t2');
    cache.invalidate('k', 't1');
    expect(cache.peek('k')).toBe('t2');
  });

  it('keeps a margin of a tenth of the lifetime, at most 30 s', () => {
    expect(usableMilliseconds(60)).toBe(54_000);
    expect(usableMilliseconds(3600)).toBe(3_570_000);
    expect(usableMilliseconds(2)).toBe(1_800);
  });
});
