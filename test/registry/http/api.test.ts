import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeDigest } from '../../../src/registry/digest.ts';
import { mediaTypes } from '../../../src/registry/media-types.ts';
import { errorCode, OciClient } from '../../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';

describe.each(['pglite', 'postgres'] as const)('registry API on %s', (database) => {
  let slipway: TestSlipway;
  let client: OciClient;

  beforeAll(async () => {
    slipway = await startSlipway({ database, config: { registry: { maxManifestBytes: 64 * 1024 } } });
    client = new OciClient(slipway.url);
  });
  afterAll(() => slipway.stop());

  async function catalog(): Promise<string[]> {
    return ((await (await client.fetch('/v2/_catalog')).json()) as { repositories: string[] }).repositories;
  }

  describe('bad input gets the spec error and changes nothing', () => {
    it('a manifest whose layer was never pushed', async () => {
      const config = Buffer.from('{}');
      const configDigest = await client.pushBlob('bad/missing-layer', config);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 2 },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar',
            digest: computeDigest(Buffer.from('never')),
            size: 5,
          },
        ],
      });
      const response = await client.putManifest('bad/missing-layer', 'v1', manifest, mediaTypes.ociManifest);
      expect(response.status).toBe(400);
      const body = (await response.json()) as { errors: Array<{ code: string; message: string }> };
      expect(body.errors[0]!.code).toBe('MANIFEST_BLOB_UNKNOWN');
      expect(body.errors[0]!.message).toContain(computeDigest(Buffer.from('never')));
      expect(await client.status('/v2/bad/missing-layer/manifests/v1')).toBe(404);
      expect(await catalog()).not.toContain('bad/missing-layer');
    });

    it('a descriptor whose size is wrong', async () => {
      const config = Buffer.from('{"a":1}');
      const configDigest = await client.pushBlob('bad/size', config);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 999 },
        layers: [],
      });
      const response = await client.putManifest('bad/size', 'v1', manifest, mediaTypes.ociManifest);
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe('MANIFEST_INVALID');
      expect(await client.status('/v2/bad/size/manifests/v1')).toBe(404);
    });

    it('a manifest that is not JSON, or over the size limit', async () => {
      const garbage = await client.putManifest('bad/json', 'v1', 'blablabla', mediaTypes.ociManifest);
      expect(garbage.status).toBe(400);
      expect(await errorCode(garbage)).toBe('MANIFEST_INVALID');
      const huge = JSON.stringify({ schemaVersion: 2, config: {}, layers: [], pad: 'x'.repeat(70 * 1024) });
      const tooBig = await client.putManifest('bad/json', 'v1', huge, mediaTypes.ociManifest);
      expect(tooBig.status).toBe(413);
      expect(await errorCode(tooBig)).toBe('SIZE_INVALID');
      expect(await client.status('/v2/bad/json/tags/list')).toBe(404);
    });

    it('a manifest pushed under a digest it does not have', async () => {
      const image = await client.pushImage('bad/digest', 'v1');
      const wrong = computeDigest(Buffer.from('other'));
      const response = await client.putManifest('bad/digest', wrong, image.manifest, mediaTypes.ociManifest);
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe('DIGEST_INVALID');
      expect(await client.status(`/v2/bad/digest/manifests/${wrong}`)).toBe(404);
    });

    it('an upload completed with the wrong digest', async () => {
      const start = await client.fetch('/v2/bad/upload/blobs/uploads/', { method: 'POST' });
      const location = start.headers.get('location')!;
      const content = randomBytes(300);
      await client.fetch(location, {
        method: 'PATCH',
        body: new Uint8Array(content),
        headers: { 'Content-Range': '0-299' },
      });
      const claimed = computeDigest(Buffer.from('something else'));
      const response = await client.fetch(`${location}?digest=${claimed}`, { method: 'PUT' });
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe('DIGEST_INVALID');
      expect(await client.status(`/v2/bad/upload/blobs/${claimed}`)).toBe(404);
      expect(await client.status(`/v2/bad/upload/blobs/${computeDigest(content)}`)).toBe(404);
    });

    it('a chunk that does not start where the upload ends', async () => {
      const start = await client.fetch('/v2/bad/chunks/blobs/uploads/', { method: 'POST' });
      const location = start.headers.get('location')!;
      await client.fetch(location, {
        method: 'PATCH',
        body: new Uint8Array(randomBytes(100)),
        headers: { 'Content-Range': '0-99' },
      });
      const skipped = await client.fetch(location, {
        method: 'PATCH',
        body: new Uint8Array(randomBytes(100)),
        headers: { 'Content-Range': '200-299' },
      });
      expect(skipped.status).toBe(416);
      expect(skipped.headers.get('range')).toBe('0-99');
      const status = await client.fetch(location);
      expect(status.status).toBe(204);
      expect(status.headers.get('range')).toBe('0-99');
    });

    it.each([
      ['dot-dot', '/v2/team/../etc/manifests/latest'],
      ['encoded slash', '/v2/team%2F..%2Fetc/manifests/latest'],
      ['uppercase', '/v2/Team/App/manifests/latest'],
      ['double slash', '/v2/team//app/tags/list'],
    ])('a name with a path trick (%s)', async (_why, path) => {
      // fetch() would normalise "..": send the path exactly as written.
      const { status, body } = await rawGet(slipway.url, path);
      expect(status).toBe(400);
      expect(JSON.parse(body).errors[0].code).toBe('NAME_INVALID');
    });

    it('an upload id that is not one', async () => {
      const response = await client.fetch('/v2/bad/id/blobs/uploads/..%2F..%2Fetc', {
        method: 'PATCH',
        body: 'x',
      });
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe('BLOB_UPLOAD_UNKNOWN');
    });

    it('an unsupported method or unknown endpoint', async () => {
      const method = await client.fetch('/v2/_catalog', { method: 'DELETE' });
      expect(method.status).toBe(405);
      expect(await errorCode(method)).toBe('UNSUPPORTED');
      const unknown = await client.fetch('/v2/team/app/nothing/here');
      expect(unknown.status).toBe(404);
      expect((await unknown.json()) as object).toHaveProperty('errors');
    });
  });

  it('serves manifests byte-exact with a digest that matches the bytes, also for sha512', async () => {
    const image = await client.pushImage('exact/app', 'v1');
    const spaced = Buffer.from(`  ${image.manifest.toString()}\n\n`);
    const pushed = await client.putManifest('exact/app', 'spaced', spaced, mediaTypes.ociManifest);
    expect(pushed.status).toBe(201);
    const response = await client.fetch('/v2/exact/app/manifests/spaced');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.equals(spaced)).toBe(true);
    expect(response.headers.get('docker-content-digest')).toBe(computeDigest(spaced));
    expect(response.headers.get('content-type')).toBe(mediaTypes.ociManifest);

    const sha512 = computeDigest(spaced, 'sha512');
    expect((await client.putManifest('exact/app', sha512, spaced, mediaTypes.ociManifest)).status).toBe(201);
    const bySha512 = await client.fetch(`/v2/exact/app/manifests/${sha512}`, { method: 'HEAD' });
    expect(bySha512.status).toBe(200);
    expect(bySha512.headers.get('docker-content-digest')).toBe(sha512);
  });

  it('negotiates an index down to its linux/amd64 image for clients that take no indexes', async () => {
    const amd = await client.pushImage('negotiate/app', 'amd');
    const arm = await client.pushImage('negotiate/app', 'arm', { platform: 'arm64' });
    const index = await client.pushIndex('negotiate/app', 'multi', [
      { digest: arm.digest, size: arm.size, arch: 'arm64' },
      { digest: amd.digest, size: amd.size, arch: 'amd64' },
    ]);
    const modern = await client.fetch('/v2/negotiate/app/manifests/multi', {
      headers: { Accept: `${mediaTypes.ociIndex}, ${mediaTypes.ociManifest}` },
    });
    expect(modern.headers.get('docker-content-digest')).toBe(index.digest);
    const old = await client.fetch('/v2/negotiate/app/manifests/multi', {
      headers: { Accept: mediaTypes.ociManifest },
    });
    expect(old.status).toBe(200);
    expect(old.headers.get('docker-content-digest')).toBe(amd.digest);
    const nothing = await client.fetch('/v2/negotiate/app/manifests/amd', {
      headers: { Accept: mediaTypes.dockerManifest },
    });
    expect(nothing.status).toBe(404);
    expect(await errorCode(nothing)).toBe('MANIFEST_UNKNOWN');
    const anything = await client.fetch('/v2/negotiate/app/manifests/amd', { headers: { Accept: '*/*' } });
    expect(anything.status).toBe(200);
  });

  it('keeps blobs private to the repositories they were pushed to or mounted into', async () => {
    const blob = randomBytes(128);
    const digest = await client.pushBlob('private/a', blob);
    const other = await client.fetch(`/v2/private/b/blobs/${digest}`);
    expect(other.status).toBe(404);
    expect(await errorCode(other)).toBe('BLOB_UNKNOWN');
    const notThere = await client.fetch(`/v2/private/b/blobs/uploads/?mount=${digest}&from=private/c`, {
      method: 'POST',
    });
    expect(notThere.status).toBe(202);
    const mounted = await client.fetch(`/v2/private/b/blobs/uploads/?mount=${digest}&from=private/a`, {
      method: 'POST',
    });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('location')).toBe(`/v2/private/b/blobs/${digest}`);
    const read = await client.fetch(`/v2/private/b/blobs/${digest}`);
    expect(Buffer.from(await read.arrayBuffer()).equals(blob)).toBe(true);
  });

  it('serves blob ranges with 206, and 416 past the end', async () => {
    const blob = randomBytes(1000);
    const digest = await client.pushBlob('range/app', blob);
    const part = await client.fetch(`/v2/range/app/blobs/${digest}`, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(Buffer.from(await part.arrayBuffer()).equals(blob.subarray(100, 200))).toBe(true);
    const past = await client.fetch(`/v2/range/app/blobs/${digest}`, { headers: { Range: 'bytes=1000-' } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */1000');
  });

  it('pages tags and the catalog in byte order with Link headers', async () => {
    const image = await client.pushImage('paging/app', 'a');
    const tags = ['B', 'a', 'b', 'c', 'd', 'e'];
    for (const tag of tags)
      await client.putManifest('paging/app', tag, image.manifest, mediaTypes.ociManifest);
    const seen: string[] = [];
    let next: string | null = '/v2/paging/app/tags/list?n=4';
    while (next) {
      const response: Response = await client.fetch(next);
      const body = (await response.json()) as { name: string; tags: string[] };
      expect(body.name).toBe('paging/app');
      seen.push(...body.tags);
      next = response.headers.get('link')?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
    }
    expect(seen).toEqual(['B', 'a', 'b', 'c', 'd', 'e']);
    const none = (await (await client.fetch('/v2/paging/app/tags/list?n=0')).json()) as { tags: string[] };
    expect(none.tags).toEqual([]);
    const bad = await client.fetch('/v2/paging/app/tags/list?n=-1');
    expect(bad.status).toBe(400);

    const page = await client.fetch('/v2/_catalog?n=1');
    expect(((await page.json()) as { repositories: string[] }).repositories).toHaveLength(1);
    expect(page.headers.get('link')).toMatch(/^<\/v2\/_catalog\?n=1&last=[^>]+>; rel="next"$/);
  });

  it('lists referrers with an artifactType filter', async () => {
    const subject = await client.pushImage('refs/app', 'v1');
    const descriptor = { digest: subject.digest, size: subject.size, mediaType: mediaTypes.ociManifest };
    const sbom = await client.pushImage('refs/app', 'sbom', {
      subject: descriptor,
      artifactType: 'application/spdx+json',
    });
    await client.pushImage('refs/app', 'sig', {
      subject: descriptor,
      artifactType: 'application/vnd.example.sig',
    });
    const put = await client.putManifest('refs/app', 'sbom2', sbom.manifest, mediaTypes.ociManifest);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);

    const all = await client.fetch(`/v2/refs/app/referrers/${subject.digest}`);
    expect(all.headers.get('content-type')).toBe(mediaTypes.ociIndex);
    expect(((await all.json()) as { manifests: unknown[] }).manifests).toHaveLength(2);
    const filtered = await client.fetch(
      `/v2/refs/app/referrers/${subject.digest}?artifactType=application/spdx%2Bjson`,
    );
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    const body = (await filtered.json()) as { manifests: Array<{ digest: string; artifactType: string }> };
    expect(body.manifests).toEqual([
      expect.objectContaining({ digest: sbom.digest, artifactType: 'application/spdx+json' }),
    ]);
  });
});

function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
