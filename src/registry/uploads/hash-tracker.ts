import type { Hash } from 'node:crypto';
import { createDigester, finishDigest, type Digest } from '../digest.ts';

interface Tracked {
  hash: Hash;
  size: number;
}

/**
 * The sha256 state of uploads this process has seen every byte of. Node cannot persist a hash state,
 * so after a restart, or when chunks reached another replica, completion re-reads the held bytes.
 */
export class HashTracker {
  readonly #entries = new Map<string, Tracked>();
  readonly #max: number;

  constructor(max = 10_000) {
    this.#max = max;
  }

  /** Starts (or continues) hashing for a chunk that begins at `offset`; null when the state is not ours. */
  hasherAt(uploadId: string, offset: number): Hash | null {
    let entry = this.#entries.get(uploadId);
    if (!entry && offset === 0) {
      if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
      entry = { hash: createDigester('sha256'), size: 0 };
      this.#entries.set(uploadId, entry);
    }
    if (!entry || entry.size !== offset) {
      this.#entries.delete(uploadId);
      return null;
    }
    return entry.hash;
  }

  advanced(uploadId: string, size: number): void {
    const entry = this.#entries.get(uploadId);
    if (entry) entry.size = size;
  }

  /** The digest of the first `size` bytes, if this process hashed exactly those. */
  digestOf(uploadId: string, size: number): Digest | null {
    const entry = this.#entries.get(uploadId);
    if (!entry || entry.size !== size) return null;
    return finishDigest(entry.hash.copy(), 'sha256');
  }

  forget(uploadId: string): void {
    this.#entries.delete(uploadId);
  }
}
