import type { Digest } from '../../registry/digest.ts';
import type { ProxyTag } from './proxy-tags.ts';

/**
 * What this process last learned of proxied tags (the digest, and when upstream was last asked), so
 * that a tag within its freshness period is served without a database read. The database stays the
 * record: an entry too old to be fresh is read again from there, where another replica may have
 * revalidated the tag meanwhile. A tag moved by another replica is therefore seen here at the latest
 * when the freshness period ends, exactly as if this replica had cached it itself.
 */
export class CheckedTags {
  readonly #entries = new Map<string, { digest: Digest; checkedAt: number }>();
  readonly #maxEntries: number;

  constructor(maxEntries = 50_000) {
    this.#maxEntries = maxEntries;
  }

  get(key: string): ProxyTag | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    return { digest: entry.digest, ageSeconds: (performance.now() - entry.checkedAt) / 1000 };
  }

  remember(key: string, tag: ProxyTag): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { digest: tag.digest, checkedAt: performance.now() - tag.ageSeconds * 1000 });
  }

  /** Asked upstream just now: it has the tag at `digest`. */
  checked(key: string, digest: Digest): void {
    this.remember(key, { digest, ageSeconds: 0 });
  }
}
