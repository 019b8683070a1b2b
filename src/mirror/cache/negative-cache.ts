/** Keys remembered as "not found" for a while, in this process. */
export class NegativeCache {
  readonly #until = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(maxEntries = 10_000) {
    this.#maxEntries = maxEntries;
  }

  remember(key: string, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.#until.delete(key);
    if (this.#until.size >= this.#maxEntries) {
      const oldest = this.#until.keys().next();
      if (!oldest.done) this.#until.delete(oldest.value);
    }
    this.#until.set(key, Date.now() + ttlMs);
  }

  has(key: string): boolean {
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#until.delete(key);
    return false;
  }

  forget(key: string): void {
    this.#until.delete(key);
  }
}
