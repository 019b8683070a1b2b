import { randomBytes } from 'node:crypto';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from '../../../src/registry/digest.ts';
import { mediaTypes } from '../../../src/registry/media-types.ts';
import type { S3DriverOptions } from '../../../src/registry/storage/s3-driver.ts';
import { imageManifest } from '../../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';
import { startLoopbackS3, type LoopbackS3 } from './driver-contract.ts';

const mib = 1024 * 1024;

let s3: LoopbackS3;
beforeAll(async () => {
  s3 = await startLoopbackS3('slipway-registry');
});
afterAll(async () => {
  await s3?.stop();
});

function s3Storage(extra: Partial<S3DriverOptions>) {
  return { storage: { driver: 's3' as const, s3: s3.driverOptions(extra) } };
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

function blobKey(prefix: string, digest: Digest): string {
  const hex = digest.slice('sha256:'.length);
  return `${prefix}blobs/sha256/${hex.slice(0, 2)}/${hex}`;
}

async function bytesOf(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

async function pushMonolithic(base: string, repository: string, data: Buffer): Promise<Digest> {
  const digest = computeDigest(data);
  const response = await fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: data,
  });
  expect(response.status, await response.clone().text()).toBe(201);
  expect(response.headers.get('docker-content-digest')).toBe(digest);
  return digest;
}

async function startUpload(base: string, repository: string): Promise<string> {
  const response = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  expect(response.status).toBe(202);
  return response.headers.get('location')!;
}

async function patchChunk(base: string, location: string, start: number, chunk: Buffer): Promise<Response> {
  return fetch(`${base}${location}`, {
    method: 'PATCH',
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Range': `${start}-${start + chunk.length - 1}`,
    },
    body: chunk,
  });
}

describe('registry on S3 storage', () => {
  let slipway: TestSlipway;
  const prefix = 'registry/';
  beforeAll(async () => {
    slipway = await startSlipway({ config: s3Storage({ prefix: 'registry' }) });
  });
  afterAll(() => slipway?.stop());

  it('reports S3 storage healthy end to end', async () => {
    const response = await fetch(`${slipway.url}/health/endtoend`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { services: Record<string, unknown> };
    expect(body.services.storage).toEqual({ ok: true, kind: 's3' });
  });

  it('pushes monolithic and chunked blobs and a manifest, and pulls them back byte-exact', async () => {
    const base = slipway.url;
    const repository = 'team/app';
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const configDigest = await pushMonolithic(base, repository, config);

    // A layer in three chunks: the first crosses the 5 MiB part size, the last comes with the PUT.
    const layer = randomBytes(11 * mib + 5);
    const layerDigest = computeDigest(layer);
    const location = await startUpload(base, repository);
    const cuts = [0, 6 * mib, 10 * mib];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const response = await patchChunk(base, location, cuts[i]!, layer.subarray(cuts[i], cuts[i + 1]));
      expect(response.status, await response.clone().text()).toBe(202);
      expect(response.headers.get('range')).toBe(`0-${cuts[i + 1]! - 1}`);
    }
    const last = layer.subarray(10 * mib);
    const put = await fetch(`${base}${location}${location.includes('?') ? '&' : '?'}digest=${layerDigest}`, {
      method: 'PUT',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${10 * mib}-${layer.length - 1}`,
      },
      body: last,
    });
    expect(put.status, await put.clone().text()).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(layerDigest);

    const manifest = imageManifest({ digest: configDigest, size: config.length }, [
      { digest: layerDigest, size: layer.length },
    ]);
    const putManifest = await fetch(`${base}/v2/${repository}/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': mediaTypes.ociManifest },
      body: manifest,
    });
    expect(putManifest.status, await putManifest.clone().text()).toBe(201);
    const manifestDigest = computeDigest(manifest);
    expect(putManifest.headers.get('docker-content-digest')).toBe(manifestDigest);

    const getManifest = await fetch(`${base}/v2/${repository}/manifests/v1`, {
      headers: { Accept: mediaTypes.ociManifest },
    });
    expect(getManifest.status).toBe(200);
    expect(getManifest.headers.get('docker-content-digest')).toBe(manifestDigest);
    expect((await bytesOf(getManifest)).equals(manifest)).toBe(true);

    const getLayer = await fetch(`${base}/v2/${repository}/blobs/${layerDigest}`);
    expect(getLayer.status).toBe(200);
    expect(getLayer.headers.get('content-length')).toBe(String(layer.length));
    expect((await bytesOf(getLayer)).equals(layer)).toBe(true);

    const getConfig = await fetch(`${base}/v2/${repository}/blobs/${configDigest}`);
    expect((await bytesOf(getConfig)).equals(config)).toBe(true);

    const ranged = await fetch(`${base}/v2/${repository}/blobs/${layerDigest}`, {
      headers: { Range: `bytes=${5 * mib - 3}-${5 * mib + 2}` },
    });
    expect(ranged.status).toBe(206);
    expect((await bytesOf(ranged)).equals(layer.subarray(5 * mib - 3, 5 * mib + 3))).toBe(true);

    // The bytes live in the bucket under the prefix, and no upload leftovers remain.
    for (const digest of [configDigest, layerDigest]) {
      const head = await s3.client.send(
        new HeadObjectCommand({ Bucket: s3.bucket, Key: blobKey(prefix, digest) }),
      );
      expect(head.ContentLength).toBe(digest === layerDigest ? layer.length : config.length);
    }
    expect(await keysUnder(`${prefix}uploads/`)).toEqual([]);
  });
});

describe('registry on S3 storage with redirects', () => {
  let slipway: TestSlipway;
  beforeAll(async () => {
    slipway = await startSlipway({ config: s3Storage({ prefix: 'redirecting', redirectSeconds: 120 }) });
  });
  afterAll(() => slipway?.stop());

  it('answers a blob GET with 307 to a pre-signed URL that downloads byte-exact', async () => {
    const data = randomBytes(200_000);
    const digest = await pushMonolithic(slipway.url, 'redirected', data);
    const response = await fetch(`${slipway.url}/v2/redirected/blobs/${digest}`, { redirect: 'manual' });
    expect(response.status).toBe(307);
    const location = response.headers.get('location')!;
    expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/redirecting/blobs/sha256/`)).toBe(true);
    expect(location).toContain('X-Amz-Signature=');
    const direct = await fetch(location);
    expect(direct.status).toBe(200);
    expect((await bytesOf(direct)).equals(data)).toBe(true);

    // Followed the way a client does, and HEAD still answers from the gateway itself.
    const followed = await fetch(`${slipway.url}/v2/redirected/blobs/${digest}`);
    expect((await bytesOf(followed)).equals(data)).toBe(true);
    const head = await fetch(`${slipway.url}/v2/redirected/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
  });
});

describe('registry on S3 storage across a restart', () => {
  // PostgreSQL keeps the upload rows across the restart (a fresh data directory each start), S3 the bytes.
  let slipway: TestSlipway | undefined;
  afterAll(() => slipway?.stop());

  it('finishes a chunked upload started before the gateway restarted', async () => {
    const storage = s3Storage({ prefix: 'restart' });
    const first = await startSlipway({ database: 'postgres', config: storage });
    slipway = first;
    const schema = first.services.config.database.schema!;
    const repository = 'restarted/app';
    const layer = randomBytes(12 * mib + 77);
    const digest = computeDigest(layer);
    const location = await startUpload(first.url, repository);
    const held = 7 * mib + 3;
    for (const [start, end] of [
      [0, 6 * mib],
      [6 * mib, held],
    ] as const) {
      const response = await patchChunk(first.url, location, start, layer.subarray(start, end));
      expect(response.status, await response.clone().text()).toBe(202);
    }
    await first.stop();
    slipway = undefined;

    const second = await startSlipway({ database: 'postgres', config: { ...storage, database: { schema } } });
    slipway = second;
    const status = await fetch(`${second.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${held - 1}`);

    // A chunk from the wrong offset is refused with where the upload really stands.
    const stale = await patchChunk(second.url, location, 0, layer.subarray(0, 10));
    expect(stale.status).toBe(416);
    expect(stale.headers.get('range')).toBe(`0-${held - 1}`);

    const resumed = await patchChunk(second.url, location, held, layer.subarray(held, 11 * mib));
    expect(resumed.status, await resumed.clone().text()).toBe(202);
    expect(resumed.headers.get('range')).toBe(`0-${11 * mib - 1}`);
    const put = await fetch(`${second.url}${location}?digest=${digest}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: layer.subarray(11 * mib),
    });
    expect(put.status, await put.clone().text()).toBe(201);

    const pulled = await fetch(`${second.url}/v2/${repository}/blobs/${digest}`);
    expect(pulled.status).toBe(200);
    expect((await bytesOf(pulled)).equals(layer)).toBe(true);
    expect(await keysUnder('restart/uploads/')).toEqual([]);
  });
});
