import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from '../../../src/registry/digest.ts';
import {
  corruptLastByte,
  cutAfter,
  holdAfter,
  startCountingProxy,
  type CountingProxy,
  type ProxiedRequest,
} from '../../helpers/counting-proxy.ts';
import {
  DistributionOciClient,
  startDistribution,
  type TestDistribution,
} from '../../helpers/distribution.ts';
import { openDownload } from '../../helpers/registry-http.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';

const MiB = 1024 * 1024;

/**
 * Blobs through the pull-through cache as they download: streamed to every waiting client, held
 * back at the last byte until verified, resumed after a break, and fetched once across replicas.
 * The upstream is Distribution behind a proxy that counts requests and can hold, cut or corrupt
 * the body of a blob's answer.
 */
describe('pull-through blob streaming', () => {
  let upstream: TestDistribution;
  let counter: CountingProxy;
  let pusher: DistributionOciClient;
  let slipway: TestSlipway;
  /** How the counting proxy reshapes the next answers for a blob, by digest; taken once each. */
  const shapes = new Map<string, Array<(body: Readable) => Readable>>();

  beforeAll(async () => {
    upstream = await startDistribution();
    counter = await startCountingProxy(upstream.url, {
      shapeBody: (request) => {
        if (request.method !== 'GET') return undefined;
        const digest = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(request.url)?.[1];
        return digest ? shapes.get(digest)?.shift() : undefined;
      },
    });
    pusher = new DistributionOciClient(upstream.url);
    slipway = await startSlipway({
      config: { proxy: { upstreams: [{ name: 'hub', url: counter.url }] } },
    });
  });

  afterAll(async () => {
    await slipway?.stop();
    await counter?.stop();
    await upstream?.stop();
  });

  async function upstreamBlob(size: number): Promise<{ content: Buffer; digest: Digest }> {
    const content = randomBytes(size);
    const digest = await pusher.pushBlob('team/app', content);
    return { content, digest };
  }

  const blobGets = (digest: Digest): ProxiedRequest[] =>
    counter.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${digest}`));

  const blobUrl = (base: string, digest: Digest) => `${base}/v2/hub/team/app/blobs/${digest}`;

  it('streams a blob to every client while it downloads, late joiners included, and fetches it once', async () => {
    const { content, digest } = await upstreamBlob(6 * MiB);
    // An odd amount, so no batching of the bytes received can line up with it.
    const sent = 2 * MiB + 100 * 1024 + 3;
    let release!: () => void;
    shapes.set(digest, [holdAfter(sent, new Promise<void>((resolve) => (release = resolve)))]);

    const first = await openDownload(blobUrl(slipway.url, digest));
    expect(first.status).toBe(200);
    expect(first.headers.get('content-length')).toBe(String(6 * MiB));
    // The upstream has sent only part and holds the rest: the clients have every byte sent so far.
    await first.readAtLeast(sent);
    const late = await openDownload(blobUrl(slipway.url, digest));
    await late.readAtLeast(sent);
    expect(blobGets(digest)).toHaveLength(1);

    release();
    const [a, b] = await Promise.all([first.rest(), late.rest()]);
    expect(a.equals(content)).toBe(true);
    expect(b.equals(content)).toBe(true);

    // Stored once verified: the next pull does not go upstream.
    const again = await fetch(blobUrl(slipway.url, digest));
    expect(computeDigest(Buffer.from(await again.arrayBuffer()))).toBe(digest);
    expect(blobGets(digest)).toHaveLength(1);
  });

  it('resumes an upstream download that broke off, asking for the rest with Range', async () => {
    const { content, digest } = await upstreamBlob(5 * MiB);
    shapes.set(digest, [cutAfter(3 * MiB)]);

    const response = await fetch(blobUrl(slipway.url, digest));
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(content)).toBe(true);

    const gets = blobGets(digest);
    expect(gets).toHaveLength(2);
    expect(gets[0]!.headers.range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.headers.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(3 * MiB);
  });

  it('never completes a download whose bytes fail the digest, and stores nothing', async () => {
    const { content, digest } = await upstreamBlob(3 * MiB + 7);
    shapes.set(digest, [corruptLastByte()]);

    const response = await fetch(blobUrl(slipway.url, digest));
    expect(response.status).toBe(200);
    const read = await response.arrayBuffer().then(
      (body) => ({ ok: true as const, length: body.byteLength }),
      () => ({ ok: false as const }),
    );
    // The connection is cut before the last byte: no client takes the bad content for the blob.
    expect(read.ok).toBe(false);

    const retry = await fetch(blobUrl(slipway.url, digest));
    expect(Buffer.from(await retry.arrayBuffer()).equals(content)).toBe(true);
    expect(blobGets(digest)).toHaveLength(2);
  });

  it('answers a HEAD of an uncached blob with a HEAD upstream, fetching nothing', async () => {
    const { digest } = await upstreamBlob(2 * MiB);
    const response = await fetch(blobUrl(slipway.url, digest), { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(2 * MiB));
    expect(counter.count((r) => r.method === 'HEAD' && r.url.endsWith(`/blobs/${digest}`))).toBe(1);
    expect(blobGets(digest)).toHaveLength(0);
  });

  it('answers BLOB_UNKNOWN for a blob the upstream does not have', async () => {
    const missing = computeDigest(randomBytes(64));
    for (const method of ['GET', 'HEAD']) {
      const response = await fetch(blobUrl(slipway.url, missing), { method });
      expect(response.status).toBe(404);
      if (method === 'GET') expect(await response.text()).toContain('BLOB_UNKNOWN');
    }
  });

  describe('with two gateway replicas on one database and one storage', () => {
    let storageRoot: string;
    let replicas: TestSlipway[];

    beforeAll(async () => {
      storageRoot = await mkdtemp(join(tmpdir(), 'slipway-shared-storage-'));
      const config = {
        proxy: { upstreams: [{ name: 'hub', url: counter.url }] },
        storage: { driver: 'filesystem' as const, root: storageRoot },
      };
      const first = await startSlipway({ database: 'postgres', config });
      const second = await startSlipway({
        database: 'postgres',
        config: { ...config, database: { schema: first.services.config.database.schema } },
      });
      replicas = [first, second];
    });

    afterAll(async () => {
      await Promise.all((replicas ?? []).map((r) => r.stop()));
      await rm(storageRoot, { recursive: true, force: true });
    });

    it('fetches a blob from the upstream once for concurrent pulls through both', async () => {
      const { content, digest } = await upstreamBlob(8 * MiB);
      let release!: () => void;
      shapes.set(digest, [holdAfter(1 * MiB, new Promise<void>((resolve) => (release = resolve)))]);

      const pulls = replicas.flatMap((replica) =>
        Array.from({ length: 8 }, () =>
          fetch(blobUrl(replica.url, digest)).then(async (r) => Buffer.from(await r.arrayBuffer())),
        ),
      );
      // Every pull is waiting (on the fill, or on the other replica's) while the upstream holds.
      await waitFor(() => blobGets(digest).length >= 1);
      await new Promise((resolve) => setTimeout(resolve, 500));
      release();

      for (const body of await Promise.all(pulls)) expect(body.equals(content)).toBe(true);
      expect(blobGets(digest)).toHaveLength(1);
    });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
