import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamClient } from '../../../src/mirror/upstream/client.ts';
import { UpstreamNotFoundError } from '../../../src/mirror/upstream/errors.ts';
import { computeDigest, type Digest } from '../../../src/registry/digest.ts';
import { mediaTypes } from '../../../src/registry/media-types.ts';
import {
  DistributionOciClient,
  startDistribution,
  type TestDistribution,
} from '../../helpers/distribution.ts';
import { imageManifest } from '../../helpers/oci-client.ts';
import { rejectionOf } from '../../helpers/rejection.ts';

/** The upstream client against CNCF Distribution (no authentication), with content pushed by the test client. */
describe('upstream client against Distribution', () => {
  const repository = 'mirror/app';
  const bigLayer = randomBytes(3 * 1024 * 1024 + 17);
  let registry: TestDistribution;
  let client: UpstreamClient;
  let manifest: Buffer;
  let manifestDigest: Digest;
  let index: { digest: Digest; body: Buffer };

  beforeAll(async () => {
    registry = await startDistribution();
    const pusher = new DistributionOciClient(registry.url);
    const small = randomBytes(512);
    const config = Buffer.from(
      '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
    );
    const [configDigest, smallDigest, bigDigest] = [
      await pusher.pushBlob(repository, config),
      await pusher.pushBlob(repository, small),
      await pusher.pushBlob(repository, bigLayer),
    ];
    // Pretty-printed with a trailing newline: byte-exact means these bytes, not a re-serialisation.
    const compact = imageManifest({ digest: configDigest, size: config.length }, [
      { digest: smallDigest, size: small.length },
      { digest: bigDigest, size: bigLayer.length },
    ]);
    manifest = Buffer.from(`${JSON.stringify(JSON.parse(compact.toString('utf8')), null, 3)}\n`);
    manifestDigest = computeDigest(manifest);
    for (const tag of ['v1', 'v2', 'v3', 'v4', 'v5']) {
      const response = await pusher.putManifest(repository, tag, manifest, mediaTypes.ociManifest);
      expect(response.status).toBe(201);
    }
    index = await pusher.pushIndex(repository, 'multi', [
      { digest: manifestDigest, size: manifest.length, arch: 'amd64' },
    ]);
    client = new UpstreamClient({ url: registry.url, name: 'distribution' });
  });

  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('pings an open registry', async () => {
    expect(await client.ping()).toEqual({ auth: 'none', apiVersion: 'registry/2.0' });
  });

  it('HEADs a manifest by tag and by digest: digest, media type and size', async () => {
    const expected = { digest: manifestDigest, mediaType: mediaTypes.ociManifest, size: manifest.length };
    expect(await client.headManifest(repository, 'v1')).toEqual(expected);
    expect(await client.headManifest(repository, manifestDigest)).toEqual(expected);
    expect(await client.headManifest(repository, 'multi')).toEqual({
      digest: index.digest,
      mediaType: mediaTypes.ociIndex,
      size: index.body.length,
    });
  });

  it('GETs manifests and indexes byte for byte, by tag and by digest', async () => {
    for (const reference of ['v3', manifestDigest]) {
      const got = await client.getManifest(repository, reference);
      expect(got.body.equals(manifest)).toBe(true);
      expect(got.digest).toBe(manifestDigest);
      expect(got.mediaType).toBe(mediaTypes.ociManifest);
    }
    const got = await client.getManifest(repository, index.digest);
    expect(got.body.equals(index.body)).toBe(true);
    expect(got).toMatchObject({ digest: index.digest, mediaType: mediaTypes.ociIndex });
  });

  it('streams a blob', async () => {
    const blob = await client.getBlob(repository, computeDigest(bigLayer));
    expect(blob).toMatchObject({
      status: 200,
      offset: 0,
      size: bigLayer.length,
      length: bigLayer.length,
      servedBy: registry.url,
    });
    const { bytes, chunks } = await collect(blob.body);
    expect(chunks).toBeGreaterThan(1);
    expect(bytes.equals(bigLayer)).toBe(true);
  });

  it('resumes a blob from an offset with exactly its tail', async () => {
    const offset = 1_234_567;
    const blob = await client.getBlob(repository, computeDigest(bigLayer), { range: offset });
    expect(blob).toMatchObject({
      status: 206,
      offset,
      size: bigLayer.length,
      length: bigLayer.length - offset,
    });
    expect((await collect(blob.body)).bytes.equals(bigLayer.subarray(offset))).toBe(true);
  });

  it('lists every tag (this Distribution ignores n and sends one page)', async () => {
    expect((await client.listTags(repository, { n: 2 })).sort()).toEqual([
      'multi',
      'v1',
      'v2',
      'v3',
      'v4',
      'v5',
    ]);
  });

  it('says what is missing: manifest, blob or repository, naming the upstream and the operation', async () => {
    const missingDigest = `sha256:${'0'.repeat(64)}`;
    const cases: Array<[() => Promise<unknown>, string, RegExp]> = [
      [
        () => client.headManifest(repository, 'nope'),
        'manifest',
        /^upstream distribution: head manifest mirror\/app:nope: /,
      ],
      [
        () => client.getManifest(repository, missingDigest),
        'manifest',
        /^upstream distribution: get manifest mirror\/app@sha256:0{64}: manifest not found \(MANIFEST_UNKNOWN/,
      ],
      [
        () => client.getBlob(repository, missingDigest),
        'blob',
        /^upstream distribution: get blob mirror\/app@sha256:0{64}: blob not found/,
      ],
      [
        () => client.listTags('mirror/none'),
        'repository',
        /^upstream distribution: list tags mirror\/none: repository not found/,
      ],
    ];
    for (const [call, missing, message] of cases) {
      const error = await rejectionOf(call());
      expect(error).toBeInstanceOf(UpstreamNotFoundError);
      expect(error).toMatchObject({ code: 'SLW_ERR_UPSTREAM_NOT_FOUND', missing, status: 404 });
      expect((error as Error).message).toMatch(message);
    }
  });
});

async function collect(body: Readable): Promise<{ bytes: Buffer; chunks: number }> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk as Buffer);
  return { bytes: Buffer.concat(parts), chunks: parts.length };
}
