import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from '../../../src/registry/digest.ts';
import { mediaTypes } from '../../../src/registry/media-types.ts';
import { startCountingProxy, type CountingProxy } from '../../helpers/counting-proxy.ts';
import {
  DistributionOciClient,
  startDistribution,
  type TestDistribution,
} from '../../helpers/distribution.ts';
import { freePort } from '../../helpers/gateway-process.ts';
import { errorCode, OciClient, type PushedImage } from '../../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';

/**
 * The pull-through cache against Distribution upstreams on loopback. `hub` trusts tags for five
 * minutes, `eager` revalidates every pull, `lenient` too but serves tags deleted upstream stale,
 * `flaky` is an upstream that gets stopped, `gone` one that never listened, and `dockerhub` stands in
 * for Docker Hub (implicit `library/`, `?ns=docker.io`). `hub`, `eager`, `lenient` and `dockerhub`
 * reach the same registry through a proxy that counts requests.
 */
describe('pull-through cache', () => {
  const bigLayer = randomBytes(8 * 1024 * 1024 + 5);
  let upstream: TestDistribution;
  let flakyUpstream: TestDistribution;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let client: OciClient;
  let pusher: DistributionOciClient;
  let image: PushedImage;
  let index: { digest: Digest; body: Buffer };
  let flakyImage: PushedImage;
  let doomed: PushedImage;

  beforeAll(async () => {
    [upstream, flakyUpstream] = await Promise.all([startDistribution(), startDistribution()]);
    counter = await startCountingProxy(upstream.url);
    pusher = new DistributionOciClient(upstream.url);
    image = await pusher.pushImage('team/app', '1', { layers: [randomBytes(700), bigLayer] });
    const arm = await pusher.pushImage('team/app', 'arm', { platform: 'arm64' });
    index = await pusher.pushIndex('team/app', 'multi', [
      { digest: image.digest, size: image.size, arch: 'amd64' },
      { digest: arm.digest, size: arm.size, arch: 'arm64' },
    ]);
    await pusher.pushImage('team/moving', 'latest');
    await pusher.pushImage('library/busy', '1');
    doomed = await pusher.pushImage('team/doomed', '1');
    flakyImage = await new DistributionOciClient(flakyUpstream.url).pushImage('team/app', '1');
    slipway = await startSlipway({
      config: {
        proxy: {
          upstreams: [
            { name: 'hub', url: counter.url, freshness: '5m', negativeTtl: '1m' },
            { name: 'eager', url: counter.url, freshness: 0 },
            { name: 'lenient', url: counter.url, freshness: 0, staleIfDeleted: true },
            { name: 'flaky', url: flakyUpstream.url, freshness: 0 },
            { name: 'gone', url: `http://127.0.0.1:${await freePort()}` },
            { name: 'dockerhub', url: counter.url, hosts: ['docker.io'] },
          ],
        },
      },
    });
    client = new OciClient(slipway.url);
  });

  afterAll(async () => {
    await slipway?.stop();
    await counter?.stop();
    await Promise.all([upstream?.stop(), flakyUpstream?.stop()]);
  });

  async function pull(path: string, init?: RequestInit) {
    const response = await client.fetch(path, init);
    const body = Buffer.from(await response.arrayBuffer());
    return { status: response.status, headers: response.headers, body };
  }

  const upstreamRequests = (method: string, path: string) =>
    counter.count((r) => r.method === method && r.url === path);

  it('fetches a tag once (MISS), then serves it from cache (HIT), byte-exact with the upstream digest', async () => {
    const first = await pull('/v2/hub/team/app/manifests/1');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('MISS');
    expect(first.body.equals(image.manifest)).toBe(true);
    expect(first.headers.get('docker-content-digest')).toBe(image.digest);
    expect(first.headers.get('content-type')).toBe(mediaTypes.ociManifest);

    const second = await pull('/v2/hub/team/app/manifests/1');
    expect(second.headers.get('x-cache')).toBe('HIT');
    expect(second.body.equals(image.manifest)).toBe(true);
    expect(upstreamRequests('GET', '/v2/team/app/manifests/1')).toBe(1);

    const head = await pull('/v2/hub/team/app/manifests/1', { method: 'HEAD' });
    expect(head.headers.get('x-cache')).toBe('HIT');
    expect(head.headers.get('docker-content-digest')).toBe(image.digest);
  });

  it('keeps an index and its digest, and fetches a child by digest once', async () => {
    const first = await pull('/v2/hub/team/app/manifests/multi');
    expect(first.headers.get('x-cache')).toBe('MISS');
    expect(first.body.equals(index.body)).toBe(true);
    expect(first.headers.get('docker-content-digest')).toBe(index.digest);
    expect(first.headers.get('content-type')).toBe(mediaTypes.ociIndex);

    const byDigest = await pull(`/v2/hub/team/app/manifests/${index.digest}`);
    expect(byDigest.headers.get('x-cache')).toBe('HIT');
    expect(computeDigest(byDigest.body)).toBe(index.digest);

    const arm = JSON.parse(index.body.toString('utf8')).manifests[1].digest as Digest;
    const child = await pull(`/v2/hub/team/app/manifests/${arm}`);
    expect(child.status).toBe(200);
    expect(child.headers.get('x-cache')).toBe('MISS');
    expect(computeDigest(child.body)).toBe(arm);
    expect((await pull(`/v2/hub/team/app/manifests/${arm}`)).headers.get('x-cache')).toBe('HIT');
    expect(upstreamRequests('GET', `/v2/team/app/manifests/${arm}`)).toBe(1);
  });

  it('serves blobs pulled through with the upstream bytes', async () => {
    const config = await pull(`/v2/hub/team/app/blobs/${image.configDigest}`);
    expect(config.status).toBe(200);
    expect(computeDigest(config.body)).toBe(image.configDigest);
    const head = await pull(`/v2/hub/team/app/blobs/${image.layerDigests[0]}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const small = await pull(`/v2/hub/team/app/blobs/${image.layerDigests[0]}`);
    expect(small.body.length).toBe(700);
    expect(Number(head.headers.get('content-length'))).toBe(700);
    expect(computeDigest(small.body)).toBe(image.layerDigests[0]);
    expect(upstreamRequests('GET', `/v2/team/app/blobs/${image.layerDigests[0]}`)).toBe(1);
  });

  it('fetches a blob from the upstream once for 32 concurrent cold pulls', async () => {
    const digest = image.layerDigests[1]!;
    const pulls = await Promise.all(
      Array.from({ length: 32 }, () => pull(`/v2/hub/team/app/blobs/${digest}`)),
    );
    for (const response of pulls) {
      expect(response.status).toBe(200);
      expect(response.body.equals(bigLayer)).toBe(true);
    }
    expect(upstreamRequests('GET', `/v2/team/app/blobs/${digest}`)).toBe(1);
    // Another proxied repository with the same layer links the stored blob instead of fetching it.
    const elsewhere = await pull(`/v2/eager/team/app/blobs/${digest}`);
    expect(elsewhere.body.equals(bigLayer)).toBe(true);
    expect(upstreamRequests('GET', `/v2/team/app/blobs/${digest}`)).toBe(1);
  });

  it('revalidates an expired tag with a HEAD, and follows a tag that moved upstream', async () => {
    const first = await pull('/v2/eager/team/moving/manifests/latest');
    expect(first.headers.get('x-cache')).toBe('MISS');
    const heads = upstreamRequests('HEAD', '/v2/team/moving/manifests/latest');
    const gets = upstreamRequests('GET', '/v2/team/moving/manifests/latest');

    const again = await pull('/v2/eager/team/moving/manifests/latest');
    expect(again.headers.get('x-cache')).toBe('REVALIDATED');
    expect(again.body.equals(first.body)).toBe(true);
    expect(upstreamRequests('HEAD', '/v2/team/moving/manifests/latest')).toBe(heads + 1);
    expect(upstreamRequests('GET', '/v2/team/moving/manifests/latest')).toBe(gets);

    const moved = await pusher.pushImage('team/moving', 'latest');
    const after = await pull('/v2/eager/team/moving/manifests/latest');
    expect(after.headers.get('x-cache')).toBe('MISS');
    expect(after.headers.get('docker-content-digest')).toBe(moved.digest);
    expect(after.body.equals(moved.manifest)).toBe(true);
    expect((await pull('/v2/eager/team/moving/manifests/latest')).headers.get('x-cache')).toBe('REVALIDATED');
    // The previous manifest stays pullable by digest.
    const old = await pull(`/v2/eager/team/moving/manifests/${first.headers.get('docker-content-digest')}`);
    expect(old.headers.get('x-cache')).toBe('HIT');
  });

  it('answers MANIFEST_UNKNOWN for what the upstream lacks, and remembers it', async () => {
    const missing = await client.fetch('/v2/hub/team/app/manifests/nope');
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe('MANIFEST_UNKNOWN');
    expect((await pull('/v2/hub/team/app/manifests/nope')).status).toBe(404);
    expect(upstreamRequests('GET', '/v2/team/app/manifests/nope')).toBe(1);
  });

  it('answers MANIFEST_UNKNOWN for a cached tag deleted upstream, or serves it STALE with staleIfDeleted', async () => {
    for (const namespace of ['eager', 'lenient']) {
      const fetched = await pull(`/v2/${namespace}/team/doomed/manifests/1`);
      expect(fetched.headers.get('x-cache')).toBe('MISS');
    }
    const pulledAt = async () => {
      const { rows } = await slipway.services.db.query<{ at: string }>(
        `SELECT p.last_pulled_at::text AS at FROM proxy_tags p JOIN repositories r ON r.id = p.repository_id
          WHERE r.name = 'lenient/team/doomed' AND p.tag = '1'`,
      );
      return new Date(rows[0]!.at).getTime();
    };
    const fetchedAt = await pulledAt();
    const deleted = await pusher.status(`/v2/team/doomed/manifests/${doomed.digest}`, { method: 'DELETE' });
    expect(deleted).toBe(202);

    const gone = await client.fetch('/v2/eager/team/doomed/manifests/1');
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe('MANIFEST_UNKNOWN');

    const heads = upstreamRequests('HEAD', '/v2/team/doomed/manifests/1');
    for (let i = 1; i <= 2; i++) {
      const stale = await pull('/v2/lenient/team/doomed/manifests/1');
      expect(stale.status).toBe(200);
      expect(stale.headers.get('x-cache')).toBe('STALE');
      expect(stale.headers.get('docker-content-digest')).toBe(doomed.digest);
      expect(stale.body.equals(doomed.manifest)).toBe(true);
      // Still cached, and still asked about: it is served as long as the upstream lacks it.
      expect(upstreamRequests('HEAD', '/v2/team/doomed/manifests/1')).toBe(heads + i);
    }
    // A stale pull counts as a pull, for eviction.
    await slipway.services.pullTracker.flush();
    expect(await pulledAt()).toBeGreaterThan(fetchedAt);
  });

  it('adds library/ for Docker Hub names and routes ?ns=docker.io to the same cache', async () => {
    const viaNs = await pull('/v2/library/busy/manifests/1?ns=docker.io');
    expect(viaNs.status).toBe(200);
    expect(viaNs.headers.get('x-cache')).toBe('MISS');
    const viaPrefix = await pull('/v2/dockerhub/library/busy/manifests/1');
    expect(viaPrefix.headers.get('x-cache')).toBe('HIT');
    expect(viaPrefix.body.equals(viaNs.body)).toBe(true);
    const short = await pull('/v2/dockerhub/busy/manifests/1');
    expect(short.status).toBe(200);
    expect(short.body.equals(viaNs.body)).toBe(true);
  });

  it('serves cached tags and blobs STALE when the upstream is down; uncached content fails fast', async () => {
    const fresh = await pull('/v2/flaky/team/app/manifests/1');
    expect(fresh.headers.get('x-cache')).toBe('MISS');
    expect(fresh.body.equals(flakyImage.manifest)).toBe(true);
    const layer = flakyImage.layerDigests[0]!;
    expect((await pull(`/v2/flaky/team/app/blobs/${layer}`)).status).toBe(200);

    await flakyUpstream.stop();
    const stale = await pull('/v2/flaky/team/app/manifests/1');
    expect(stale.status).toBe(200);
    expect(stale.headers.get('x-cache')).toBe('STALE');
    expect(stale.body.equals(flakyImage.manifest)).toBe(true);
    const blob = await pull(`/v2/flaky/team/app/blobs/${layer}`);
    expect(computeDigest(blob.body)).toBe(layer);

    const started = Date.now();
    const uncached = await client.fetch('/v2/flaky/team/other/manifests/1');
    expect(uncached.status).toBe(503);
    expect(await errorCode(uncached)).toBe('UNAVAILABLE');
    const blobMiss = await client.fetch(`/v2/flaky/team/app/blobs/${flakyImage.configDigest}`);
    expect(blobMiss.status).toBe(503);
    await blobMiss.arrayBuffer();
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('answers UNAVAILABLE when nothing is cached and the upstream never answers', async () => {
    const response = await client.fetch('/v2/gone/team/app/manifests/1');
    expect(response.status).toBe(503);
    const body = (await response.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]?.code).toBe('UNAVAILABLE');
    expect(body.errors[0]?.message).toContain('gone');
  });

  it('refuses pushes and deletes in proxied repositories, and stores nothing', async () => {
    const blob = await client.fetch(
      `/v2/hub/pushed/here/blobs/uploads/?digest=${computeDigest(Buffer.from('x'))}`,
      {
        method: 'POST',
        body: 'x',
      },
    );
    expect(blob.status).toBe(403);
    const denied = (await blob.json()) as { errors: Array<{ code: string; message: string }> };
    expect(denied.errors[0]?.code).toBe('DENIED');
    expect(denied.errors[0]?.message).toContain(`hub/pushed/here is a pull-through cache of ${counter.url}`);

    const manifest = await client.putManifest('hub/pushed/here', '1', image.manifest, mediaTypes.ociManifest);
    expect(manifest.status).toBe(403);
    await manifest.arrayBuffer();
    expect(await client.status('/v2/hub/team/app/manifests/1', { method: 'DELETE' })).toBe(403);
    expect(await client.status('/v2/hub/team/app/manifests/1')).toBe(200);

    const catalog = (await (await client.fetch('/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog.repositories).not.toContain('hub/pushed/here');
    expect(catalog.repositories).toContain('hub/team/app');
  });

  it('leaves repositories outside the upstream namespaces as they were', async () => {
    const pushed = await client.pushImage('local/app', '1');
    const response = await pull('/v2/local/app/manifests/1');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-cache')).toBeNull();
    expect(response.body.equals(pushed.manifest)).toBe(true);
    expect(await client.status('/v2/local/app/manifests/absent')).toBe(404);
  });
});

describe('pull-through cache with authentication', () => {
  let upstream: TestDistribution;
  let slipway: TestSlipway;
  const admin = { user: 'admin', password: 'proxy-test-password' };

  beforeAll(async () => {
    upstream = await startDistribution();
    await new DistributionOciClient(upstream.url).pushImage('team/app', '1');
    slipway = await startSlipway({
      config: {
        auth: { enabled: true, adminUser: admin.user, adminPassword: admin.password },
        proxy: { upstreams: [{ name: 'hub', url: upstream.url }] },
      },
    });
  });

  afterAll(async () => {
    await slipway?.stop();
    await upstream?.stop();
  });

  it('lets any signed-in user pull, asks anonymous clients to log in, and refuses pushes', async () => {
    const anonymous = new OciClient(slipway.url);
    expect(await anonymous.status('/v2/hub/team/app/manifests/1')).toBe(401);

    const basic = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`;
    const signedIn = new OciClient(slipway.url, { Authorization: basic });
    const pulled = await signedIn.fetch('/v2/hub/team/app/manifests/1');
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('x-cache')).toBe('MISS');
    await pulled.arrayBuffer();

    const push = await signedIn.fetch(`/v2/hub/team/app/blobs/uploads/`, { method: 'POST' });
    expect(push.status).toBe(403);
    expect(await errorCode(push)).toBe('DENIED');
  });
});
