/**
 * Runs one piece of work per key at a time: whoever asks while it runs gets the same promise, and
 * the key is free again once it settles (whether it succeeded or failed).
 */
export class SingleFlight<K, V> {
  readonly #running = new Map<K, Promise<V>>();

  run(key: K, work: () => Promise<V>): Promise<V> {
    const running = this.#running.get(key);
    if (running) return running;
    const started = (async () => {
      try {
        return await work();
      } finally {
        this.#running.delete(key);
      }
    })();
    this.#running.set(key, started);
    return started;
  }

  /** How many keys have work running. */
  get size(): number {
    return this.#running.size;
  }
}
