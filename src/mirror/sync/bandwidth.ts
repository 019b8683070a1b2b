import { pipeline, Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export interface BandwidthLimiterOptions {
  /** Bytes that may pass at once after a pause. Default a quarter second's worth, at least 64 KiB. */
  burstBytes?: number;
}

const minimumBurstBytes = 64 * 1024;

/**
 * A token bucket shared by every stream that passes through it, so their total rate stays at
 * `bytesPerSecond` however many there are. The bucket starts full and holds `burstBytes` at most.
 *
 * Each `take` reserves its bytes at once, letting the bucket go into debt, and waits until the debt is
 * paid off: waiters are served in the order they asked, and a chunk larger than the bucket still passes.
 */
export class BandwidthLimiter {
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  #tokens: number;
  #refilledAt: number;

  constructor(bytesPerSecond: number, options: BandwidthLimiterOptions = {}) {
    this.bytesPerSecond = checkedPositive('bandwidth limit (bytes per second)', bytesPerSecond);
    this.burstBytes = checkedPositive(
      'bandwidth burst (bytes)',
      options.burstBytes ?? Math.max(Math.ceil(bytesPerSecond / 4), minimumBurstBytes),
    );
    this.#tokens = this.burstBytes;
    this.#refilledAt = performance.now();
  }

  /**
   * Resolves once `bytes` may pass. When `signal` aborts, the wait ends at once with an AbortError; the
   * bytes stay reserved, so a cancelled wait never lets later ones pass sooner than the limit allows.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.#refill();
    this.#tokens -= bytes;
    if (this.#tokens >= 0) return;
    await sleep((-this.#tokens / this.bytesPerSecond) * 1000, undefined, signal ? { signal } : {});
  }

  /**
   * `source` at the limiter's pace: each chunk passes once the bucket has room for it. Nothing is read
   * ahead beyond the streams' own buffers, so backpressure reaches the source. Destroying the result
   * destroys `source` and ends a wait in progress, as does `signal`.
   */
  throttle(source: Readable, signal?: AbortSignal): Readable {
    const destroyed = new AbortController();
    const waits = signal ? AbortSignal.any([signal, destroyed.signal]) : destroyed.signal;
    const throttled = new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.take(chunk.length, waits).then(
          () => done(null, chunk),
          (error: unknown) => {
            if (!throttled.destroyed) done(error as Error);
          },
        );
      },
      destroy: (error, done) => {
        destroyed.abort();
        done(error);
      },
    });
    pipeline(source, throttled, () => {
      // Errors reach the consumer through `throttled`.
    });
    return throttled;
  }

  #refill(): void {
    const now = performance.now();
    const earned = ((now - this.#refilledAt) / 1000) * this.bytesPerSecond;
    this.#tokens = Math.min(this.burstBytes, this.#tokens + earned);
    this.#refilledAt = now;
  }
}

function checkedPositive(what: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${what} must be a positive number, got ${value}`);
  }
  return value;
}
