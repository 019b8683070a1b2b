import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvictionReport } from '../../../src/mirror/cache/eviction.ts';
import { computeDigest, digestHex, type Digest } from '../../../src/registry/digest.ts';
import { mediaTypes } from '../../../src/registry/media-types.ts';
import { startCountingProxy, type CountingProxy } from '../../helpers/counting-proxy.ts';
import {
  DistributionOciClient,
  startDistribution,
  type TestDistribution,
} from '../../helpers/distribution.ts';
import { imageManifest, OciClient, type PushedImage } from '../../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';

const layerSize = 100_000;
/** Room for eight of the nine layers below, with manifests and configs; not for all nine. */
const budget = 850_000;

/**
 * Least-recently-pulled eviction against a Distribution upstream. Images of random 100 kB layers are
 * pulled through `hub` in a known order, `b` and `e` again at the end (by tag, and by digest). `a:1` is
 * an index whose image shares layer `s` with `d:1` and layer `a` with `a:2`; `c:1` shares its layers
 * with a local repository (one referenced by a pushed image, one uploaded by a push not finished yet).
 * Over a budget of 850 kB, `a:1` and `c:1` are the least recently pulled unpinned tags.
 */
describe.each(['pglite', 'postgres'] as const)('pull-through cache eviction on %s', (database) => {
  const layers = Object.fromEntries(
    ['s', 'a', 'b', 'c', 'c2', 'd', 'e', 'keep', 'pinned'].map((name) => [name, randomBytes(layerSize)]),
  ) as Record<'s' | 'a' | 'b' | 'c' | 'c2' | 'd' | 'e' | 'keep' | 'pinned', Buffer>;
  let upstream: TestDistribution;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let client: OciClient;
  let images: Record<'a2' | 'b' | 'c' | 'd' | 'e' | 'keep' | 'pinned', PushedImage>;
  let aImage: PushedImage;
  let aIndex: { digest: Digest; body: Buffer };
  let local: PushedImage;
  let report: EvictionReport | null;

  beforeAll(async () => {
    upstream = await startDistribution();
    counter = await startCountingProxy(upstream.url);
    const pusher = new DistributionOciClient(upstream.url);
    aImage = await pusher.pushImage('team/a', 'amd64', { layers: [layers.s, layers.a] });
    aIndex = await pusher.pushIndex('team/a', '1', [
      { digest: aImage.digest, size: aImage.size, arch: 'amd64' },
    ]);
    images = {
      a2: await pusher.pushImage('team/a', '2', { layers: [layers.a] }),
      b: await pusher.pushImage('team/b', '1', { layers: [layers.b] }),
      c: await pusher.pushImage('team/c', '1', { layers: [layers.c, layers.c2] }),
      d: await pusher.pushImage('team/d', '1', { layers: [layers.s, layers.d] }),
      e: await pusher.pushImage('team/e', '1', { layers: [layers.e] }),
      keep: await pusher.pushImage('team/keep', 'v1', { layers: [layers.keep] }),
      pinned: await pusher.pushImage('team/pinned', 'stable', { layers: [layers.pinned] }),
    };
    slipway = await startSlipway({
      database,
      config: {
        proxy: {
          upstreams: [
            { name: 'hub', url: counter.url, storageBudget: budget, pinned: ['stable', 'team/keep:v*'] },
          ],
        },
      },
    });
    // Pull times are written when the test says so (eviction writes them first), not by the timer.
    await slipway.services.pullTracker.close();
    client = new OciClient(slipway.url);
    local = await client.pushImage('local/app', '1', { layers: [layers.c] });
    await client.pushBlob('local/wip', layers.c2);

    for (const [repository, tag] of [
      ['team/keep', 'v1'],
      ['team/e', '1'],
      ['team/b', '1'],
      ['team/a', '1'],
      ['team/pinned', 'stable'],
      ['team/c', '1'],
      ['team/a', '2'],
      ['team/d', '1'],
    ] as const) {
      expect(await pullImage(`hub/${repository}`, tag)).toBe('MISS');
    }
    // b again by tag, e by digest: both now the most recently pulled.
    expect(await pullImage('hub/team/b', '1')).toBe('HIT');
    expect(await pullImage('hub/team/e', images.e.digest)).toBe('HIT');
    // A fetched blob is stored just after it was served: wait for the last ones.
    await eventually(async () => (await cachedBytes()) > 9 * layerSize);

    report = await slipway.services.cacheEviction.run();
  });

  afterAll(async () => {
    await slipway?.stop();
    await counter?.stop();
    await upstream?.stop();
  });

  /** Pulls the manifest, an index's children and every blob, checking each digest; the manifest's X-Cache. */
  async function pullImage(repository: string, reference: string): Promise<string | null> {
    const response = await client.fetch(`/v2/${repository}/manifests/${reference}`);
    const body = Buffer.from(await response.arrayBuffer());
    expect(response.status).toBe(200);
    const manifest = JSON.parse(body.toString('utf8')) as {
      manifests?: Array<{ digest: Digest }>;
      config?: { digest: Digest };
      layers?: Array<{ digest: Digest }>;
    };
    for (const child of manifest.manifests ?? []) await pullImage(repository, child.digest);
    for (const blob of [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])]) {
      expect(computeDigest(await pullBlob(repository, blob.digest))).toBe(blob.digest);
    }
    return response.headers.get('x-cache');
  }

  async function pullBlob(repository: string, digest: Digest): Promise<Buffer> {
    const response = await client.fetch(`/v2/${repository}/blobs/${digest}`);
    expect(response.status).toBe(200);
    return Buffer.from(await response.arrayBuffer());
  }

  const manifestCache = async (repository: string, reference: string) => {
    const response = await client.fetch(`/v2/${repository}/manifests/${reference}`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    return response.headers.get('x-cache');
  };
  const configSize = (image: PushedImage) =>
    (JSON.parse(image.manifest.toString('utf8')) as { config: { size: number } }).config.size;
  const cachedBytes = () => slipway.services.cacheEviction.cacheBytes('hub');
  const upstreamGets = (path: string) => counter.count((r) => r.method === 'GET' && r.url === path);
  const blobGets = (digest: Digest) =>
    counter.count((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${digest}`));
  const blobFile = (digest: Digest) =>
    join(slipway.dataDir, 'storage', 'blobs', 'sha256', digestHex(digest).slice(0, 2), digestHex(digest));

  it('evicts the least recently pulled unpinned tags until the cache is within its budget', async () => {
    expect(report).not.toBeNull();
    const [hub] = report!.upstreams;
    expect(hub?.upstream).toBe('hub');
    expect(hub?.evicted.map((e) => `${e.repository}:${e.tag}`)).toEqual(['hub/team/a:1', 'hub/team/c:1']);
    expect(hub?.evicted.map((e) => e.digest)).toEqual([aIndex.digest, images.c.digest]);
    expect(hub?.overBudget).toBe(false);
    expect(hub?.bytes).toBeLessThanOrEqual(budget);
    expect(await cachedBytes()).toBe(hub?.bytes);
    // a:1 held no layer of its own; c:1 held two, which only local repositories use now.
    expect(hub?.evictedBytes).toBeGreaterThan(2 * layerSize);
    expect(hub?.evictedBytes).toBeLessThan(3 * layerSize);
    expect(report!.blobsDeleted).toBe(2);
    expect(report!.bytesDeleted).toBe(configSize(aImage) + configSize(images.c));

    const metrics = await (await fetch(`${slipway.url}/metrics`)).text();
    expect(metrics).toContain('slipway_proxy_evictions_total{upstream="hub"} 2\n');
    expect(metrics).toContain(`slipway_proxy_cache_bytes{upstream="hub"} ${hub?.bytes}\n`);
    expect(metrics).toContain(`slipway_proxy_cache_budget_bytes{upstream="hub"} ${budget}\n`);
  });

  it('keeps recently pulled and pinned tags cached', async () => {
    const gets = counter.requests.length;
    for (const [repository, tag] of [
      ['team/a', '2'],
      ['team/b', '1'],
      ['team/d', '1'],
      ['team/e', '1'],
      ['team/keep', 'v1'],
      ['team/pinned', 'stable'],
    ] as const) {
      expect(await manifestCache(`hub/${repository}`, tag)).toBe('HIT');
    }
    expect(await pullImage('hub/team/keep', 'v1')).toBe('HIT');
    expect(counter.requests.length).toBe(gets);
  });

  it('serves layers shared with kept images from the cache, their bytes intact', async () => {
    for (const [repository, name] of [
      ['hub/team/d', 's'],
      ['hub/team/a', 'a'],
    ] as const) {
      const digest = computeDigest(layers[name]);
      expect(blobGets(digest)).toBe(1);
      expect(existsSync(blobFile(digest))).toBe(true);
      expect((await pullBlob(repository, digest)).equals(layers[name])).toBe(true);
      expect(blobGets(digest)).toBe(1);
    }
  });

  it("deletes what only evicted images used, and leaves local repositories' blobs alone", async () => {
    expect(existsSync(blobFile(aImage.configDigest))).toBe(false);
    expect(existsSync(blobFile(images.c.configDigest))).toBe(false);
    const [c, c2] = images.c.layerDigests as [Digest, Digest];
    expect(local.layerDigests[0]).toBe(c);
    expect(existsSync(blobFile(c))).toBe(true);
    expect(existsSync(blobFile(c2))).toBe(true);
    expect(await manifestCache('local/app', '1')).toBeNull();
    expect((await pullBlob('local/app', c)).equals(layers.c)).toBe(true);
    // The unfinished push goes on: its layer is still there.
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    await client.pushBlob('local/wip', config);
    const manifest = imageManifest({ digest: computeDigest(config), size: config.length }, [
      { digest: c2, size: layerSize },
    ]);
    const pushed = await client.putManifest('local/wip', '1', manifest, mediaTypes.ociManifest);
    expect(pushed.status).toBe(201);
    expect((await pullBlob('local/wip', c2)).equals(layers.c2)).toBe(true);
  });

  it('fetches evicted tags from the upstream again (MISS), then serves them from cache', async () => {
    expect(upstreamGets('/v2/team/a/manifests/1')).toBe(1);
    expect(await pullImage('hub/team/a', '1')).toBe('MISS');
    expect(upstreamGets('/v2/team/a/manifests/1')).toBe(2);
    expect(upstreamGets(`/v2/team/a/manifests/${aImage.digest}`)).toBe(2);
    expect(blobGets(aImage.configDigest)).toBe(2);
    // Its layers are still stored for a:2 and d:1: linked again, not fetched.
    expect(blobGets(computeDigest(layers.s))).toBe(1);
    expect(blobGets(computeDigest(layers.a))).toBe(1);
    expect(await manifestCache('hub/team/a', '1')).toBe('HIT');
    expect(await pullImage('hub/team/c', '1')).toBe('MISS');
  });

  it('records no tag deletion events for evicted cache entries', async () => {
    const { rows } = await slipway.services.db.query<{ kind: string }>(
      `SELECT kind FROM events WHERE repository LIKE 'hub/%'`,
    );
    expect(rows).toEqual([]);
  });

  it('writes pull times in batches, not on every pull', async () => {
    const pulledAt = async () => {
      const { rows } = await slipway.services.db.query<{ at: string }>(
        `SELECT p.last_pulled_at::text AS at FROM proxy_tags p JOIN repositories r ON r.id = p.repository_id
          WHERE r.name = 'hub/team/pinned' AND p.tag = 'stable'`,
      );
      return rows[0]?.at;
    };
    const before = await pulledAt();
    expect(before).toBeDefined();
    for (let i = 0; i < 5; i++) expect(await manifestCache('hub/team/pinned', 'stable')).toBe('HIT');
    expect(await pulledAt()).toBe(before);
    await slipway.services.pullTracker.flush();
    const after = await pulledAt();
    expect(new Date(after!).getTime()).toBeGreaterThan(new Date(before!).getTime());
  });
});

/** Waits until `condition` holds, for 10 s at most. */
async function eventually(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`still not so after 10 s: ${condition.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('pull-through cache eviction on a timer', () => {
  let upstream: TestDistribution;
  let slipway: TestSlipway;
  let client: OciClient;

  beforeAll(async () => {
    upstream = await startDistribution();
    const pusher = new DistributionOciClient(upstream.url);
    for (const repository of ['team/x', 'team/y']) {
      await pusher.pushImage(repository, '1', { layers: [randomBytes(layerSize)] });
    }
    slipway = await startSlipway({
      config: {
        proxy: {
          evictionInterval: '200ms',
          upstreams: [{ name: 'hub', url: upstream.url, storageBudget: '150kB' }],
        },
      },
    });
    client = new OciClient(slipway.url);
  });

  afterAll(async () => {
    await slipway?.stop();
    await upstream?.stop();
  });

  it('brings an upstream back within its budget by itself', async () => {
    for (const repository of ['hub/team/x', 'hub/team/y']) {
      const response = await client.fetch(`/v2/${repository}/manifests/1`);
      const manifest = (await response.json()) as { layers: Array<{ digest: Digest }> };
      expect(await client.status(`/v2/${repository}/blobs/${manifest.layers[0]!.digest}`)).toBe(200);
    }
    // y's layer counts once stored, just after it was served.
    const tagged = async () => {
      const { rows } = await slipway.services.db.query<{ name: string }>(
        `SELECT r.name FROM tags t JOIN repositories r ON r.id = t.repository_id ORDER BY r.name`,
      );
      return rows.map((row) => row.name);
    };
    await eventually(async () => (await tagged()).length < 2);
    expect(await tagged()).toEqual(['hub/team/y']);
    expect(await slipway.services.cacheEviction.cacheBytes('hub')).toBeLessThanOrEqual(150_000);
    const cached = async (repository: string) =>
      (await client.fetch(`/v2/${repository}/manifests/1`, { method: 'HEAD' })).headers.get('x-cache');
    expect(await cached('hub/team/y')).toBe('HIT');
    expect(await cached('hub/team/x')).toBe('MISS');
  });
});
