import { LRUCache } from 'lru-cache';

interface Load<V> {
  promise: Promise<V | undefined>;
  /** False once the key was deleted while loading: the result may predate the change, so it is not kept. */
  current: boolean;
}

/**
 * An LRU cache that loads misses itself: concurrent misses of one key share a single load, and a
 * delete while a load is running keeps that load's result out of the cache, so a change made through
 * this process is seen by every request that starts after it, even when a slower read of the old value
 * finishes later.
 */
export class LoadingCache<V extends NonNullable<unknown>> {
  readonly #entries: LRUCache<string, V>;
  readonly #loads = new Map<string, Load<V>>();

  constructor(options: LRUCache.Options<string, V, unknown>) {
    this.#entries = new LRUCache(options);
  }

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  /**
   * The value `loader` finds (null or undefined: absent, and not cached), shared with every other
   * caller missing the same key meanwhile. Hot paths call `get` first, which costs no promise.
   */
  async load(key: string, loader: () => Promise<V | null | undefined>): Promise<V | undefined> {
    const hit = this.#entries.get(key);
    if (hit !== undefined) return hit;
    const running = this.#loads.get(key);
    if (running) return running.promise;
    const load: Load<V> = { current: true, promise: Promise.resolve(undefined) };
    load.promise = loader()
      .then((value) => {
        if (value == null) return undefined;
        if (load.current) this.#entries.set(key, value);
        return value;
      })
      .finally(() => {
        if (this.#loads.get(key) === load) this.#loads.delete(key);
      });
    this.#loads.set(key, load);
    return load.promise;
  }

  set(key: string, value: V): void {
    this.#entries.set(key, value);
  }

  delete(key: string): void {
    this.#entries.delete(key);
    const running = this.#loads.get(key);
    if (running) {
      running.current = false;
      this.#loads.delete(key);
    }
  }

  /** Deletes every key `matches` accepts, cached or loading. */
  deleteWhere(matches: (key: string) => boolean): void {
    for (const key of [...this.#entries.keys(), ...this.#loads.keys()]) if (matches(key)) this.delete(key);
  }
}
