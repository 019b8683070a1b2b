import { describe, expect, it } from 'vitest';
import { LoadingCache } from '../../../src/registry/metadata/loading-cache.ts';

/** A loader that answers only when told to, counting its calls. */
function gatedLoader(value: string | undefined) {
  const calls: Array<() => void> = [];
  return {
    calls,
    load: () =>
      new Promise<string | undefined>((resolve) => {
        calls.push(() => resolve(value));
      }),
  };
}

describe('LoadingCache', () => {
  it('shares one load among concurrent misses of a key, then serves the value from memory', async () => {
    const cache = new LoadingCache<string>({ max: 10 });
    const loader = gatedLoader('v1');
    const waiting = [
      cache.load('k', loader.load),
      cache.load('k', loader.load),
      cache.load('k', loader.load),
    ];
    expect(loader.calls).toHaveLength(1);
    loader.calls[0]!();
    expect(await Promise.all(waiting)).toEqual(['v1', 'v1', 'v1']);
    expect(cache.get('k')).toBe('v1');
    expect(await cache.load('k', loader.load)).toBe('v1');
    expect(loader.calls).toHaveLength(1);
  });

  it('keeps a load that a delete overtook out of the cache, and loads afresh for later callers', async () => {
    const cache = new LoadingCache<string>({ max: 10 });
    const old = gatedLoader('old');
    const before = cache.load('k', old.load);
    cache.delete('k'); // the value changed while the read was under way
    const fresh = gatedLoader('new');
    const after = cache.load('k', fresh.load);
    expect(fresh.calls).toHaveLength(1);
    old.calls[0]!();
    expect(await before).toBe('old');
    expect(cache.get('k')).toBeUndefined();
    fresh.calls[0]!();
    expect(await after).toBe('new');
    expect(cache.get('k')).toBe('new');
  });

  it('caches neither absence nor failure, and retries both', async () => {
    const cache = new LoadingCache<string>({ max: 10 });
    expect(await cache.load('missing', async () => undefined)).toBeUndefined();
    expect(cache.get('missing')).toBeUndefined();
    await expect(cache.load('broken', async () => Promise.reject(new Error('db down')))).rejects.toThrow(
      'db down',
    );
    expect(await cache.load('broken', async () => 'recovered')).toBe('recovered');
  });

  it('deletes matching keys, loading ones included', async () => {
    const cache = new LoadingCache<string>({ max: 10 });
    cache.set('repo@a', '1');
    cache.set('other@a', '2');
    const loading = gatedLoader('3');
    const pending = cache.load('repo@b', loading.load);
    cache.deleteWhere((key) => key.startsWith('repo@'));
    loading.calls[0]!();
    await pending;
    expect(cache.get('repo@a')).toBeUndefined();
    expect(cache.get('repo@b')).toBeUndefined();
    expect(cache.get('other@a')).toBe('2');
  });
});
