import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { BandwidthLimiter } from '../../../src/mirror/sync/bandwidth.ts';

/** `total` bytes in `chunkSize` chunks, made only when asked for; `pulled()` counts those asked for. */
function lazySource(total: number, chunkSize: number): { source: Readable; pulled: () => number } {
  let pulled = 0;
  const source = new Readable({
    highWaterMark: chunkSize,
    read() {
      if (pulled >= total) return this.push(null);
      const size = Math.min(chunkSize, total - pulled);
      pulled += size;
      this.push(randomBytes(size));
    },
  });
  return { source, pulled: () => pulled };
}

async function elapsedMs(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

// setTimeout may fire up to a millisecond early; a few more for rounding.
const timerSlackMs = 5;

describe('BandwidthLimiter', () => {
  it('refuses a limit or burst that is not a positive number', () => {
    for (const limit of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new BandwidthLimiter(limit)).toThrow(RangeError);
    }
    expect(() => new BandwidthLimiter(1000, { burstBytes: 0 })).toThrow(RangeError);
  });

  it('holds a quarter second of bytes, at least 64 KiB', () => {
    expect(new BandwidthLimiter(8 * 1024 * 1024).burstBytes).toBe(2 * 1024 * 1024);
    expect(new BandwidthLimiter(1000).burstBytes).toBe(64 * 1024);
  });

  it('lets the burst pass at once, then paces the rest at the limit', async () => {
    const limiter = new BandwidthLimiter(100_000, { burstBytes: 10_000 });
    expect(await elapsedMs(() => limiter.take(10_000))).toBeLessThan(50);
    // 20 KB more at 100 KB/s.
    const waited = await elapsedMs(async () => {
      await limiter.take(15_000);
      await limiter.take(5_000);
    });
    expect(waited).toBeGreaterThanOrEqual(200 - timerSlackMs);
  });

  it('passes a chunk larger than the bucket, at the limit', async () => {
    const limiter = new BandwidthLimiter(100_000, { burstBytes: 1_000 });
    expect(await elapsedMs(() => limiter.take(21_000))).toBeGreaterThanOrEqual(200 - timerSlackMs);
  });

  it('streams every byte unchanged', async () => {
    const content = randomBytes(300_000);
    const limiter = new BandwidthLimiter(10_000_000);
    const chunks = Array.from({ length: 30 }, (_, i) => content.subarray(i * 10_000, (i + 1) * 10_000));
    const passed = await buffer(limiter.throttle(Readable.from(chunks)));
    expect(passed.equals(content)).toBe(true);
  });

  it('shares the limit among the streams passing through it at the same time', async () => {
    const rate = 1_000_000;
    const limiter = new BandwidthLimiter(rate, { burstBytes: 50_000 });
    const streams = Array.from({ length: 4 }, () => lazySource(100_000, 16 * 1024).source);
    const took = await elapsedMs(() => Promise.all(streams.map((s) => buffer(limiter.throttle(s)))));
    // 400 KB in all: each stream at the full limit would be done in about 100 ms.
    expect(took).toBeGreaterThanOrEqual(((400_000 - 50_000) / rate) * 1000 - timerSlackMs);
  });

  it('reads the source no faster than the limit: backpressure reaches it', async () => {
    const rate = 200_000;
    const burst = 20_000;
    const { source, pulled } = lazySource(10_000_000, 4 * 1024);
    const throttled = new BandwidthLimiter(rate, { burstBytes: burst }).throttle(source);
    throttled.resume();
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const allowed = burst + (rate * (performance.now() - started)) / 1000;
    // What the limit let through, and what the streams' buffers hold besides.
    expect(pulled()).toBeLessThan(allowed + 64 * 1024);
    throttled.destroy();
  });

  it('ends a wait as soon as the signal aborts', async () => {
    const limiter = new BandwidthLimiter(1_000, { burstBytes: 1_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const started = performance.now();
    // Ten seconds' worth.
    await expect(limiter.take(10_000, controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(1_000);
    await expect(limiter.take(1, controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('fails a throttled stream waiting when the signal aborts, and destroys its source', async () => {
    const limiter = new BandwidthLimiter(1_000, { burstBytes: 1_000 });
    const { source } = lazySource(1_000_000, 16 * 1024);
    const controller = new AbortController();
    const throttled = limiter.throttle(source, controller.signal);
    const read = buffer(throttled);
    setTimeout(() => controller.abort(), 20);
    const started = performance.now();
    await expect(read).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(source.destroyed).toBe(true);
  });

  it('ends the wait of a throttled stream destroyed by its reader, and destroys its source', async () => {
    const limiter = new BandwidthLimiter(1_000, { burstBytes: 1_000 });
    const { source } = lazySource(1_000_000, 16 * 1024);
    const throttled = limiter.throttle(source);
    throttled.resume();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closed = new Promise((resolve) => throttled.once('close', resolve));
    throttled.destroy();
    await closed;
    expect(source.destroyed).toBe(true);
  });
});
