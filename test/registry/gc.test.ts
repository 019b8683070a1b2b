import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeDigest, digestHex, type Digest } from '../../src/registry/digest.ts';
import { mediaTypes } from '../../src/registry/media-types.ts';
import { errorCode, imageManifest, OciClient } from '../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

const collectEverything = { untaggedGraceSeconds: 0, blobGraceSeconds: 0, uploadExpirySeconds: 3600 };

describe.each(['pglite', 'postgres'] as const)('garbage collection on %s', (database) => {
  let slipway: TestSlipway;
  let client: OciClient;

  beforeAll(async () => {
    slipway = await startSlipway({ database });
    client = new OciClient(slipway.url);
  });
  afterAll(() => slipway.stop());

  const blobFile = (digest: Digest) =>
    join(slipway.dataDir, 'storage', 'blobs', 'sha256', digestHex(digest).slice(0, 2), digestHex(digest));
  const gc = (policy = collectEverything) => slipway.services.gc.run(policy);

  it('removes untagged manifests and unreferenced blobs, keeps everything a tag reaches', async () => {
    const kept = await client.pushImage('gc/app', 'v1');
    const replaced = await client.pushImage('gc/app', 'v2');
    await client.pushImage('gc/app', 'v2'); // v2 moves: the first v2 image is now untagged
    const orphan = await client.pushBlob('gc/app', randomBytes(100));

    const report = await gc();
    expect(report).not.toBeNull();
    expect(report!.manifests).toBeGreaterThanOrEqual(1);

    expect(await client.status(`/v2/gc/app/manifests/${kept.digest}`)).toBe(200);
    expect(await client.status(`/v2/gc/app/manifests/${replaced.digest}`)).toBe(404);
    for (const digest of [kept.configDigest, ...kept.layerDigests]) {
      expect(await client.status(`/v2/gc/app/blobs/${digest}`)).toBe(200);
      expect(existsSync(blobFile(digest))).toBe(true);
    }
    for (const digest of [orphan, replaced.configDigest, ...replaced.layerDigests]) {
      expect(await client.status(`/v2/gc/app/blobs/${digest}`)).toBe(404);
      expect(existsSync(blobFile(digest))).toBe(false);
    }
  });

  it('keeps recent content during the grace period', async () => {
    const image = await client.pushImage('gc/grace', 'tmp');
    await client.fetch(`/v2/gc/grace/manifests/tmp`, { method: 'DELETE' });
    const blob = await client.pushBlob('gc/grace', randomBytes(64));
    await gc({ untaggedGraceSeconds: 3600, blobGraceSeconds: 3600, uploadExpirySeconds: 3600 });
    expect(await client.status(`/v2/gc/grace/manifests/${image.digest}`)).toBe(200);
    expect(await client.status(`/v2/gc/grace/blobs/${blob}`)).toBe(200);
  });

  it('keeps the children of a tagged index and removes them with it', async () => {
    const amd = await client.pushImage('gc/multi', 'amd64-build');
    const arm = await client.pushImage('gc/multi', 'arm64-build', { platform: 'arm64' });
    await client.fetch('/v2/gc/multi/manifests/amd64-build', { method: 'DELETE' });
    await client.fetch('/v2/gc/multi/manifests/arm64-build', { method: 'DELETE' });
    const index = await client.pushIndex('gc/multi', 'latest', [
      { digest: amd.digest, size: amd.size, arch: 'amd64' },
      { digest: arm.digest, size: arm.size, arch: 'arm64' },
    ]);

    await gc();
    expect(await client.status(`/v2/gc/multi/manifests/${amd.digest}`)).toBe(200);
    expect(await client.status(`/v2/gc/multi/blobs/${arm.layerDigests[0]}`)).toBe(200);

    expect(await client.status('/v2/gc/multi/manifests/latest', { method: 'DELETE' })).toBe(202);
    await gc();
    for (const digest of [index.digest, amd.digest, arm.digest]) {
      expect(await client.status(`/v2/gc/multi/manifests/${digest}`)).toBe(404);
    }
    expect(await client.status(`/v2/gc/multi/blobs/${arm.layerDigests[0]}`)).toBe(404);
  });

  it('keeps referrers while their subject lives', async () => {
    const subject = await client.pushImage('gc/signed', 'v1');
    const signature = await client.pushImage(
      'gc/signed',
      computeDigest(Buffer.from('placeholder')).replace(/.*/, 'sig-tmp'),
      {
        subject: { digest: subject.digest, size: subject.size, mediaType: mediaTypes.ociManifest },
        artifactType: 'application/vnd.example.signature',
      },
    );
    await client.fetch('/v2/gc/signed/manifests/sig-tmp', { method: 'DELETE' });

    await gc();
    expect(await client.status(`/v2/gc/signed/manifests/${signature.digest}`)).toBe(200);

    await client.fetch(`/v2/gc/signed/manifests/${subject.digest}`, { method: 'DELETE' });
    await gc();
    expect(await client.status(`/v2/gc/signed/manifests/${signature.digest}`)).toBe(404);
  });

  it('keeps a blob another repository still references', async () => {
    const image = await client.pushImage('gc/shared-a', 'v1');
    const mount = await client.fetch(
      `/v2/gc/shared-b/blobs/uploads/?mount=${image.layerDigests[0]}&from=gc/shared-a`,
      { method: 'POST' },
    );
    expect(mount.status).toBe(201);
    await gc();
    expect(await client.status(`/v2/gc/shared-b/blobs/${image.layerDigests[0]}`)).toBe(200);
    expect(existsSync(blobFile(image.layerDigests[0]!))).toBe(true);
  });

  it('finishes a deletion a crashed run left half done, and never serves such a blob', async () => {
    const blob = await client.pushBlob('gc/crash', randomBytes(64));
    await slipway.services.db.query(`UPDATE blobs SET state = 'deleting' WHERE digest = $1`, [blob]);
    slipway.services.store.forgetBlobs(new Set([blob]));
    expect(await client.status(`/v2/gc/crash/blobs/${blob}`)).toBe(404);

    await gc({ untaggedGraceSeconds: 3600, blobGraceSeconds: 3600, uploadExpirySeconds: 3600 });
    expect(existsSync(blobFile(blob))).toBe(false);
    const { rowCount } = await slipway.services.db.query('SELECT 1 FROM blobs WHERE digest = $1', [blob]);
    expect(rowCount).toBe(0);
  });

  it('revives a blob that is pushed again while marked for deletion', async () => {
    const content = randomBytes(64);
    const blob = await client.pushBlob('gc/revive', content);
    await slipway.services.db.query(`UPDATE blobs SET state = 'deleting' WHERE digest = $1`, [blob]);
    await client.pushBlob('gc/revive', content);
    await gc({ untaggedGraceSeconds: 3600, blobGraceSeconds: 3600, uploadExpirySeconds: 3600 });
    const response = await client.fetch(`/v2/gc/revive/blobs/${blob}`);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(content)).toBe(true);
  });

  it('removes bytes a crash left in storage without metadata, once past the grace period', async () => {
    // What a crash between the storage commit and the database commit leaves: bytes, no rows.
    const driver = slipway.services.driver;
    const content = randomBytes(4096);
    const digest = computeDigest(content);
    const stored = await driver.openUpload(randomUUID());
    await stored.append(Readable.from([content]));
    await stored.commit(digest);
    const upload = randomUUID();
    await (await driver.openUpload(upload)).append(Readable.from([randomBytes(2048)]));
    const uploadDir = join(slipway.dataDir, 'storage', 'uploads', upload);
    const tagged = await client.pushImage('gc/orphans', 'v1');

    const young = await gc({ untaggedGraceSeconds: 3600, blobGraceSeconds: 3600, uploadExpirySeconds: 3600 });
    expect(young!.orphans).toBe(0);
    expect(existsSync(blobFile(digest))).toBe(true);
    expect(existsSync(uploadDir)).toBe(true);

    const report = await gc({ untaggedGraceSeconds: 3600, blobGraceSeconds: 0, uploadExpirySeconds: 0 });
    expect(report!.orphans).toBeGreaterThanOrEqual(2);
    expect(existsSync(blobFile(digest))).toBe(false);
    expect(existsSync(uploadDir)).toBe(false);
    const { rowCount } = await slipway.services.db.query('SELECT 1 FROM blobs WHERE digest = $1', [digest]);
    expect(rowCount).toBe(0);
    expect(existsSync(blobFile(tagged.layerDigests[0]!))).toBe(true);
    expect(await client.status(`/v2/gc/orphans/blobs/${tagged.layerDigests[0]}`)).toBe(200);

    // The same content pushed afterwards is stored and served again.
    await client.pushBlob('gc/orphans', content);
    const response = await client.fetch(`/v2/gc/orphans/blobs/${digest}`);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(content)).toBe(true);
  });

  it('expires abandoned uploads and their bytes', async () => {
    const start = await client.fetch('/v2/gc/uploads/blobs/uploads/', { method: 'POST' });
    const location = start.headers.get('location')!;
    await client.fetch(location, {
      method: 'PATCH',
      body: new Uint8Array(randomBytes(1000)),
      headers: { 'Content-Range': '0-999' },
    });
    const id = location.split('/').pop()!;
    expect(existsSync(join(slipway.dataDir, 'storage', 'uploads', id))).toBe(true);

    const report = await gc({ untaggedGraceSeconds: 3600, blobGraceSeconds: 3600, uploadExpirySeconds: 0 });
    expect(report!.uploads).toBeGreaterThanOrEqual(1);
    const status = await client.fetch(location);
    expect(status.status).toBe(404);
    expect(await errorCode(status)).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(existsSync(join(slipway.dataDir, 'storage', 'uploads', id))).toBe(false);
  });

  it('never leaves a pushed manifest pointing at a collected blob under concurrent pushes', async () => {
    const rounds = 12;
    const outcomes = await Promise.all(
      Array.from({ length: rounds }, async (_, i) => {
        const config = Buffer.from(JSON.stringify({ round: i, nonce: randomBytes(4).toString('hex') }));
        const layer = randomBytes(256);
        const configDigest = await client.pushBlob('gc/race', config);
        const layerDigest = await client.pushBlob('gc/race', layer);
        const collecting = gc();
        const manifest = imageManifest({ digest: configDigest, size: config.length }, [
          { digest: layerDigest, size: layer.length },
        ]);
        const response = await client.putManifest('gc/race', `r${i}`, manifest, mediaTypes.ociManifest);
        await collecting;
        return {
          status: response.status,
          code: response.status === 201 ? undefined : await errorCode(response),
          layerDigest,
        };
      }),
    );
    for (const outcome of outcomes) {
      expect([201, 400]).toContain(outcome.status);
      if (outcome.status === 400) expect(outcome.code).toBe('MANIFEST_BLOB_UNKNOWN');
    }
    await gc();
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status !== 201) continue;
      expect(await client.status(`/v2/gc/race/manifests/r${i}`)).toBe(200);
      const blob = await client.fetch(`/v2/gc/race/blobs/${outcome.layerDigest}`);
      expect(blob.status).toBe(200);
      expect((await blob.arrayBuffer()).byteLength).toBe(256);
    }
    expect(outcomes.some((o) => o.status === 201)).toBe(true);
  });
});
