import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRegistryStore } from '../../../src/registry/local-store.ts';
import { parseRepositoryName, parseTag } from '../../../src/registry/names.ts';
import type { MirrorDefinition } from '../../../src/mirror/sync/skopeo-sync-file.ts';
import {
  runMirrorSync,
  type MirrorSyncOptions,
  type MirrorSyncResult,
} from '../../../src/mirror/sync/sync-engine.ts';
import { parseTagFilter } from '../../../src/mirror/sync/tag-filter.ts';
import { UpstreamClient } from '../../../src/mirror/upstream/client.ts';
import type { CountingProxy } from '../../helpers/counting-proxy.ts';
import type { DistributionOciClient } from '../../helpers/distribution.ts';
import type { PushedImage } from '../../helpers/oci-client.ts';
import { startProxiedUpstream, type ProxiedUpstream } from '../../helpers/proxied-upstream.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';
import { waitFor } from '../../helpers/tools.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The limit of these tests, and the burst the limiter allows at it (a quarter second's worth). */
const limit = 1 * MiB;
const burst = limit / 4;
// Timers may fire a millisecond early, and durations are rounded.
const timerSlackMs = 20;

/**
 * The sync engine's bandwidth limit, against a Distribution upstream on loopback (through a proxy that
 * records requests), copying into a gateway's local store. Every image has blobs of its own: Slipway
 * links a blob it already stores instead of downloading it.
 */
describe('mirror sync bandwidth limit', () => {
  let upstream: ProxiedUpstream;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let local: LocalRegistryStore;
  let client: UpstreamClient;
  let pusher: DistributionOciClient;

  beforeAll(async () => {
    upstream = await startProxiedUpstream();
    ({ counter, pusher } = upstream);
    slipway = await startSlipway();
    local = slipway.services.store;
    client = new UpstreamClient({ url: counter.url });
  });

  afterAll(async () => {
    await client?.close();
    await slipway?.stop();
    await upstream?.stop();
  });

  function mirror(name: string, remote: string): MirrorDefinition {
    return {
      name,
      upstream: { url: counter.url, repository: remote, tlsVerify: true },
      filter: parseTagFilter({}),
      platforms: 'all',
    };
  }

  function sync(definition: MirrorDefinition, options: MirrorSyncOptions = {}): Promise<MirrorSyncResult> {
    return runMirrorSync(definition, { upstream: client, local }, { retry: { attempts: 1 }, ...options });
  }

  /** Pushes an image with fresh layers of these sizes; its blob bytes in all (config included). */
  async function pushImage(remote: string, tag: string, layerSizes: number[]): Promise<number> {
    const layers = layerSizes.map((size) => randomBytes(size));
    const image: PushedImage = await pusher.pushImage(remote, tag, { layers });
    const config = await fetch(`${upstream.url}/v2/${remote}/blobs/${image.configDigest}`, {
      method: 'HEAD',
    });
    return Number(config.headers.get('content-length')) + layerSizes.reduce((sum, size) => sum + size, 0);
  }

  /** The shortest time the limit allows for downloading `bytes`: all but the burst at the limit. */
  const minimumMs = (bytes: number) => ((bytes - burst) / limit) * 1000;

  const layerGets = (remote: string) =>
    counter.count((r) => r.method === 'GET' && r.url.startsWith(`/v2/${remote}/blobs/`));

  it('downloads the blobs of a copy no faster than the limit, and much faster without it', async () => {
    const limitedBytes = await pushImage('team/limited', '1', [640 * KiB, 640 * KiB]);
    const limited = await sync(mirror('mirrors/limited', 'team/limited'), { bandwidthLimit: limit });
    expect(limited.tags).toMatchObject([{ tag: '1', outcome: 'copied' }]);
    expect(limited.bytesCopied).toBeGreaterThan(limitedBytes);
    expect(limited.durationMs).toBeGreaterThanOrEqual(minimumMs(limitedBytes) - timerSlackMs);

    const unlimitedBytes = await pushImage('team/unlimited', '1', [640 * KiB, 640 * KiB]);
    const unlimited = await sync(mirror('mirrors/unlimited', 'team/unlimited'), { bandwidthLimit: null });
    expect(unlimited.tags).toMatchObject([{ tag: '1', outcome: 'copied' }]);
    // About a second at the limit; on loopback, a small fraction of that.
    expect(unlimited.durationMs).toBeLessThan(minimumMs(unlimitedBytes));
  });

  it('shares the limit among the tags copied at the same time', async () => {
    const tags = ['a', 'b', 'c', 'd'];
    let bytes = 0;
    for (const tag of tags) bytes += await pushImage('team/concurrent', tag, [384 * KiB]);
    let layerGetsAtFirstCopy: number | undefined;
    const result = await sync(mirror('mirrors/concurrent', 'team/concurrent'), {
      bandwidthLimit: limit,
      concurrency: tags.length,
      onProgress: () => (layerGetsAtFirstCopy ??= layerGets('team/concurrent')),
    });

    expect(result.totals).toMatchObject({ copied: tags.length, failed: 0 });
    // Every tag's blobs were being downloaded before the first tag was done: they overlapped...
    expect(layerGetsAtFirstCopy).toBe(2 * tags.length);
    // ...and together kept to the limit. Each at the limit would have taken about a quarter of this.
    expect(result.durationMs).toBeGreaterThanOrEqual(minimumMs(bytes) - timerSlackMs);
  });

  it('ends promptly when cancelled while a download waits for the limit', async () => {
    const bytes = await pushImage('team/cancelled', '1', [4 * MiB]);
    const controller = new AbortController();
    const running = sync(mirror('mirrors/cancelled', 'team/cancelled'), {
      bandwidthLimit: limit,
      signal: controller.signal,
    });
    // The config blob, then the layer: once its answer came, the burst passes and the rest waits.
    await waitFor('the layer download', () => (layerGets('team/cancelled') === 2 ? true : undefined), {
      intervalMs: 1,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const cancelledAt = performance.now();
    controller.abort();
    const result = await running;

    // Seconds of the download were left.
    expect(minimumMs(bytes)).toBeGreaterThan(3_000);
    expect(performance.now() - cancelledAt).toBeLessThan(1_000);
    expect(result.cancelled).toBe(true);
    expect(result.tags).toEqual([
      { tag: '1', outcome: 'failed', reason: 'cancelled before the copy finished' },
    ]);
    await expect(
      local.getManifest(parseRepositoryName('mirrors/cancelled'), { kind: 'tag', tag: parseTag('1') }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/UNKNOWN/) });
  });

  it('refuses a limit that is not a positive number of bytes per second', async () => {
    for (const bandwidthLimit of [0, -1, Number.NaN]) {
      await expect(sync(mirror('mirrors/invalid', 'team/limited'), { bandwidthLimit })).rejects.toThrow(
        RangeError,
      );
    }
  });
});
