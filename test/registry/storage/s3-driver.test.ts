import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, StorageError } from '../../../src/errors.ts';
import { computeDigest } from '../../../src/registry/digest.ts';
import { CheckedDriver } from '../../../src/registry/storage/checked-driver.ts';
import { S3Driver } from '../../../src/registry/storage/s3-driver.ts';
import { describeBlobDriverContract, startLoopbackS3, type LoopbackS3 } from './driver-contract.ts';

let s3: LoopbackS3;
beforeAll(async () => {
  s3 = await startLoopbackS3();
});
afterAll(async () => {
  await s3?.stop();
});

describeBlobDriverContract('s3', () => new S3Driver(s3.driverOptions({ prefix: 'plain' })));
describeBlobDriverContract(
  's3 behind CheckedDriver, with redirects',
  () => new CheckedDriver(new S3Driver(s3.driverOptions({ prefix: 'checked/', redirectSeconds: 60 }))),
  { redirects: true },
);

describe('S3Driver specifics', () => {
  async function keysUnder(prefix: string): Promise<string[]> {
    const out = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key!).sort();
  }

  it('keeps every key under the prefix and leaves no upload objects after commit and abort', async () => {
    const driver = new S3Driver(s3.driverOptions({ prefix: '/tidy/' }));
    const data = randomBytes(6 * 1024 * 1024 + 5);
    const digest = computeDigest(data);
    const committed = await driver.openUpload(randomUUID());
    await committed.append(Readable.from([data]));
    await committed.commit(digest);
    const aborted = await driver.openUpload(randomUUID());
    await aborted.append(Readable.from([data]));
    await aborted.abort();

    const hex = digest.slice('sha256:'.length);
    expect(await keysUnder('tidy/')).toEqual([`tidy/blobs/sha256/${hex.slice(0, 2)}/${hex}`]);
    expect(await keysUnder('blobs/')).toEqual([]);
  });

  it('passes its health check against a working bucket and fails it against a missing one', async () => {
    await new S3Driver(s3.driverOptions()).checkHealth();
    expect(await keysUnder('_health')).toEqual([]);
    const broken = new S3Driver(s3.driverOptions({ bucket: 'no-such-bucket' }));
    const failure = await broken.checkHealth().then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StorageError);
    expect((failure as Error).message).toContain('no-such-bucket');
    expect((failure as Error).message).not.toContain('S3RVER');
  });

  it('treats a missing bucket as a storage failure, not as a missing blob', async () => {
    const broken = new S3Driver(s3.driverOptions({ bucket: 'no-such-bucket' }));
    await expect(broken.read(computeDigest(randomBytes(8)))).rejects.toBeInstanceOf(StorageError);
  });

  it('returns no redirect URL when redirects are off', async () => {
    const driver = new S3Driver(s3.driverOptions({ redirectSeconds: 0 }));
    expect(await driver.redirectUrl(computeDigest(randomBytes(8)), 60)).toBeNull();
  });

  it('signs redirect URLs for the public endpoint while talking to the bucket through its own', async () => {
    const { endpoint } = s3.driverOptions();
    const publicEndpoint = endpoint!.replace('127.0.0.1', 'localhost');
    const driver = new S3Driver(s3.driverOptions({ prefix: 'public', redirectSeconds: 60, publicEndpoint }));
    const data = randomBytes(5000);
    const digest = computeDigest(data);
    const writer = await driver.openUpload(randomUUID());
    await writer.append(Readable.from([data]));
    await writer.commit(digest);

    const url = new URL((await driver.redirectUrl(digest, 60))!);
    expect(url.origin).toBe(new URL(publicEndpoint).origin);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
    await driver.close();
  });

  it('refuses half-given credentials and parts under 5 MiB', () => {
    expect(() => new S3Driver(s3.driverOptions({ secretAccessKey: undefined }))).toThrow(ConfigError);
    expect(() => new S3Driver(s3.driverOptions({ partSizeMiB: 4 }))).toThrow(ConfigError);
  });
});
