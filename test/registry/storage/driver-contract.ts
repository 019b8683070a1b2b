import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { BlobNotFoundError } from '../../../src/errors.ts';
import { computeDigest, type Digest } from '../../../src/registry/digest.ts';
import type { BlobDriver, UploadWriter } from '../../../src/registry/storage/driver.ts';
import type { S3DriverOptions } from '../../../src/registry/storage/s3-driver.ts';

const mib = 1024 * 1024;

export interface ContractOptions {
  /** The driver is configured to hand out pre-signed URLs, so redirectUrl must not be null. */
  redirects?: boolean;
}

/**
 * The whole BlobDriver contract. `makeDriver` returns a NEW driver instance over the SAME storage on
 * every call: resuming tests write with one instance and continue with another, as after a restart.
 * Sizes straddle 5 MiB so that drivers with 5 MiB parts cross part boundaries.
 */
export function describeBlobDriverContract(
  name: string,
  makeDriver: () => BlobDriver | Promise<BlobDriver>,
  options: ContractOptions = {},
): void {
  describe(`BlobDriver contract: ${name}`, () => {
    it('reports a missing blob as BlobNotFoundError from stat and read, before any stream', async () => {
      const driver = await makeDriver();
      const digest = computeDigest(randomBytes(32));
      await expect(driver.stat(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(driver.read(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(driver.read(digest, { start: 0, end: 9 })).rejects.toBeInstanceOf(BlobNotFoundError);
    });

    it('stores an uploaded blob and reads it whole and in ranges', async () => {
      const driver = await makeDriver();
      const data = randomBytes(300_000);
      const digest = await uploadBlob(driver, [data.subarray(0, 100_000), data.subarray(100_000)]);
      expect(await driver.stat(digest)).toEqual({ size: data.length });
      expect(equalBytes(await readAll(await driver.read(digest)), data)).toBe(true);
      for (const [start, end] of [
        [0, 0],
        [data.length - 1, data.length - 1],
        [12_345, 200_001],
        [0, data.length - 1],
      ] as const) {
        const slice = await readAll(await driver.read(digest, { start, end }));
        expect(equalBytes(slice, data.subarray(start, end + 1)), `bytes ${start}-${end}`).toBe(true);
      }
    });

    it('copies a blob whole and in ranges into a destination it does not end', async () => {
      const driver = await makeDriver();
      await expect(driver.openCopy(computeDigest(randomBytes(8)))).rejects.toBeInstanceOf(BlobNotFoundError);
      const data = randomBytes(2_500_000);
      const digest = await uploadBlob(driver, [data]);
      for (const range of [
        undefined,
        { start: 0, end: 0 },
        { start: 1_000_000, end: 2_499_999 },
        { start: 7, end: 1_048_583 },
      ]) {
        const chunks: Buffer[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            chunks.push(Buffer.from(chunk));
            callback();
          },
        });
        await (
          await driver.openCopy(digest, range)
        )(sink);
        expect(sink.writableEnded).toBe(false);
        const expected = range ? data.subarray(range.start, range.end + 1) : data;
        expect(equalBytes(Buffer.concat(chunks), expected), JSON.stringify(range)).toBe(true);
      }
    });

    it('stores a zero-length blob', async () => {
      const driver = await makeDriver();
      const writer = await driver.openUpload(randomUUID());
      expect(writer.size).toBe(0);
      await writer.append(Readable.from([]));
      expect(writer.size).toBe(0);
      expect((await readAll(await writer.readHeld())).length).toBe(0);
      const digest = computeDigest(Buffer.alloc(0));
      await writer.commit(digest);
      expect(await driver.stat(digest)).toEqual({ size: 0 });
      expect((await readAll(await driver.read(digest))).length).toBe(0);
    });

    it('appends in order across several appends, empty ones included', async () => {
      const driver = await makeDriver();
      const pieces = [randomBytes(3 * mib), Buffer.alloc(0), randomBytes(3 * mib + 17), randomBytes(1)];
      const writer = await driver.openUpload(randomUUID());
      let expected = 0;
      for (const piece of pieces) {
        await writer.append(chunked(piece, 256 * 1024));
        expected += piece.length;
        expect(writer.size).toBe(expected);
      }
      const data = Buffer.concat(pieces);
      expect(equalBytes(await readAll(await writer.readHeld()), data)).toBe(true);
      const digest = computeDigest(data);
      await writer.commit(digest);
      expect(equalBytes(await readAll(await driver.read(digest)), data)).toBe(true);
    });

    it('resumes an upload in a new driver instance exactly where it stopped', async () => {
      const id = randomUUID();
      const data = randomBytes(7 * mib + 100);
      const cuts = [0, 3 * mib, 7 * mib, data.length];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const writer = await (await makeDriver()).openUpload(id);
        expect(writer.size, `size seen by instance ${i}`).toBe(cuts[i]);
        await writer.append(chunked(data.subarray(cuts[i], cuts[i + 1]), 64 * 1024));
        expect(writer.size).toBe(cuts[i + 1]);
      }
      const last = await (await makeDriver()).openUpload(id);
      expect(last.size).toBe(data.length);
      expect(equalBytes(await readAll(await last.readHeld()), data)).toBe(true);
      const digest = computeDigest(data);
      await last.commit(digest);
      const reader = await makeDriver();
      expect(await reader.stat(digest)).toEqual({ size: data.length });
      expect(equalBytes(await readAll(await reader.read(digest)), data)).toBe(true);
      // The upload is gone once committed: reopening the id starts from nothing.
      const reopened = await reader.openUpload(id);
      expect(reopened.size).toBe(0);
      await reopened.abort();
    });

    it('keeps size consistent when the source fails midway, and the upload stays usable', async () => {
      const driver = await makeDriver();
      const id = randomUUID();
      const data = randomBytes(9 * mib + 3);
      const writer = await driver.openUpload(id);
      await writer.append(chunked(data.subarray(0, mib), 128 * 1024));
      const failAt = 7 * mib + 12_345;
      await expect(writer.append(failingSource(data.subarray(mib, failAt)))).rejects.toThrow(
        /client went away/,
      );
      const held = writer.size;
      expect(held).toBeGreaterThanOrEqual(mib);
      expect(held).toBeLessThanOrEqual(failAt);

      // What a new process sees is the same, and it is exactly the bytes that arrived.
      const resumed = await (await makeDriver()).openUpload(id);
      expect(resumed.size).toBe(held);
      expect(equalBytes(await readAll(await resumed.readHeld()), data.subarray(0, held))).toBe(true);

      await resumed.append(chunked(data.subarray(held), 512 * 1024));
      expect(resumed.size).toBe(data.length);
      const digest = computeDigest(data);
      await resumed.commit(digest);
      expect(equalBytes(await readAll(await (await makeDriver()).read(digest)), data)).toBe(true);
    });

    it('stops an append on an aborted signal with size matching what is held', async () => {
      const driver = await makeDriver();
      const id = randomUUID();
      const writer = await driver.openUpload(id);
      const controller = new AbortController();
      const sent: Buffer[] = [];
      const source = Readable.from(
        (async function* () {
          for (let i = 0; i < 200; i++) {
            const chunk = randomBytes(64 * 1024);
            sent.push(chunk);
            yield chunk;
            if (i === 90) controller.abort();
          }
        })(),
      );
      await expect(writer.append(source, controller.signal)).rejects.toThrow();
      const data = Buffer.concat(sent);
      expect(writer.size).toBeLessThan(200 * 64 * 1024);
      const resumed = await (await makeDriver()).openUpload(id);
      expect(resumed.size).toBe(writer.size);
      expect(equalBytes(await readAll(await resumed.readHeld()), data.subarray(0, writer.size))).toBe(true);
      await resumed.abort();
    });

    it('returns exactly the held bytes from readHeld, mid-upload too, and appends continue after it', async () => {
      const id = randomUUID();
      const first = randomBytes(6 * mib + 7);
      const writer = await (await makeDriver()).openUpload(id);
      await writer.append(chunked(first, mib));
      expect(equalBytes(await readAll(await writer.readHeld()), first)).toBe(true);
      expect(writer.size).toBe(first.length);

      const second = randomBytes(5 * mib + 1);
      await writer.append(chunked(second, mib));
      const all = Buffer.concat([first, second]);
      const again = await (await makeDriver()).openUpload(id);
      expect(again.size).toBe(all.length);
      expect(equalBytes(await readAll(await again.readHeld()), all)).toBe(true);
      expect(equalBytes(await readAll(await again.readHeld()), all), 'readHeld twice').toBe(true);
      const digest = computeDigest(all);
      await again.commit(digest);
      expect(equalBytes(await readAll(await (await makeDriver()).read(digest)), all)).toBe(true);
    });

    it('abort removes the upload and creates no blob', async () => {
      const driver = await makeDriver();
      const id = randomUUID();
      const data = randomBytes(6 * mib);
      const writer = await driver.openUpload(id);
      await writer.append(chunked(data, mib));
      await writer.abort();
      const reopened = await (await makeDriver()).openUpload(id);
      expect(reopened.size).toBe(0);
      expect((await readAll(await reopened.readHeld())).length).toBe(0);
      await reopened.abort();
      await expect(driver.stat(computeDigest(data))).rejects.toBeInstanceOf(BlobNotFoundError);
    });

    it('deletes idempotently', async () => {
      const driver = await makeDriver();
      const digest = await uploadBlob(driver, [randomBytes(1000)]);
      await driver.delete(digest);
      await driver.delete(digest);
      await expect(driver.stat(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(driver.read(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
      await driver.delete(computeDigest(randomBytes(8)));
    });

    it('streams a 20 MiB blob in chunks, durably as it goes, without holding it in memory', async () => {
      const gc = exposeGc();
      const id = randomUUID();
      const total = 20 * mib + 123;
      const firstAppend = 16 * mib;
      const hash = createHash('sha256');
      let durableMidway = -1;
      // Live ArrayBuffer memory (after a full GC) above the baseline, sampled every MiB from 7 to 15 MiB
      // into the first append: a driver holding the stream grows by ~1 MiB per sample, one bounded by a
      // part (5 MiB in the S3 tests) stays flat. The median shrugs off a stray socket buffer.
      const growth: number[] = [];
      gc();
      const baseline = process.memoryUsage().arrayBuffers;

      async function* generate(from: number, to: number) {
        for (let offset = from; offset < to; offset += chunkSize) {
          const chunk = syntheticChunk(offset, Math.min(chunkSize, to - offset));
          hash.update(chunk);
          if (offset % mib === 0 && offset >= 7 * mib && offset <= 15 * mib) {
            gc();
            growth.push(process.memoryUsage().arrayBuffers - baseline);
          }
          if (offset === 11 * mib) durableMidway = (await (await makeDriver()).openUpload(id)).size;
          yield chunk;
        }
      }

      await (
        await makeDriver()
      )
        .openUpload(id)
        .then((w) => w.append(Readable.from(generate(0, firstAppend))));
      const resumed = await (await makeDriver()).openUpload(id);
      expect(resumed.size).toBe(firstAppend);
      await resumed.append(Readable.from(generate(firstAppend, total)));
      expect(resumed.size).toBe(total);

      // Another process saw bytes land while the stream was still flowing, not only at its end.
      expect(durableMidway).toBeGreaterThanOrEqual(5 * mib);
      expect(durableMidway).toBeLessThanOrEqual(11 * mib);
      expect(growth).toHaveLength(9);
      const median = [...growth].sort((a, b) => a - b)[4]!;
      expect(
        median,
        `live buffer growth ${growth.map((g) => (g / mib).toFixed(1)).join(', ')} MiB`,
      ).toBeLessThan(8 * mib);

      const digest = `sha256:${hash.digest('hex')}` as Digest;
      await resumed.commit(digest);
      const driver = await makeDriver();
      expect(await driver.stat(digest)).toEqual({ size: total });
      const readHash = createHash('sha256');
      for await (const chunk of await driver.read(digest)) readHash.update(chunk as Buffer);
      expect(`sha256:${readHash.digest('hex')}`).toBe(digest);
      for (const start of [5 * mib - 10, 10 * mib - 1, total - 200]) {
        const end = Math.min(start + 99, total - 1);
        const slice = await readAll(await driver.read(digest, { start, end }));
        expect(equalBytes(slice, syntheticRange(start, end + 1)), `bytes ${start}-${end}`).toBe(true);
      }
    });

    it('lists stored blobs and uploads with their sizes and times, and forgets what is gone', async () => {
      const driver = await makeDriver();
      // Object stores keep whole seconds.
      const before = Date.now() - 2000;
      const data = randomBytes(12_345);
      const stored = await uploadBlob(driver, [data]);
      const open = randomUUID();
      await (await driver.openUpload(open)).append(chunked(randomBytes(1000), 400));
      const aborted = randomUUID();
      const writer = await driver.openUpload(aborted);
      await writer.append(chunked(randomBytes(10), 10));

      const listed = await collect(driver.listBlobs());
      const blob = listed.find((entry) => entry.digest === stored);
      expect(blob?.size).toBe(data.length);
      expect(blob!.modifiedAt.getTime()).toBeGreaterThanOrEqual(before);
      expect(blob!.modifiedAt.getTime()).toBeLessThanOrEqual(Date.now() + 2000);
      const uploads = await collect(driver.listUploads());
      expect(uploads.map((upload) => upload.id)).toEqual(expect.arrayContaining([open, aborted]));
      expect(uploads.find((upload) => upload.id === open)!.modifiedAt.getTime()).toBeGreaterThanOrEqual(
        before,
      );

      await writer.abort();
      await driver.delete(stored);
      expect((await collect(driver.listBlobs())).map((entry) => entry.digest)).not.toContain(stored);
      expect((await collect(driver.listUploads())).map((upload) => upload.id)).not.toContain(aborted);
    });

    it('gives a redirect URL that downloads the blob byte-exact, or null', async () => {
      const driver = await makeDriver();
      const data = randomBytes(70_000);
      const digest = await uploadBlob(driver, [data]);
      const url = await driver.redirectUrl(digest, 60);
      if (options.redirects) expect(url).not.toBeNull();
      if (url === null) return;
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(equalBytes(Buffer.from(await response.arrayBuffer()), data)).toBe(true);
    });
  });
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────────

async function uploadBlob(driver: BlobDriver, pieces: Buffer[]): Promise<Digest> {
  const writer: UploadWriter = await driver.openUpload(randomUUID());
  for (const piece of pieces) await writer.append(chunked(piece, 64 * 1024));
  const digest = computeDigest(Buffer.concat(pieces));
  await writer.commit(digest);
  return digest;
}

/** A stream of fresh copies of `data` in `size`-byte chunks, as a socket would hand them over. */
function chunked(data: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += size)
        yield Buffer.from(data.subarray(offset, offset + size));
    })(),
  );
}

/** Delivers `data` in chunks, then fails the way a dropped client connection does. */
function failingSource(data: Buffer): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += 100_000) {
        yield Buffer.from(data.subarray(offset, offset + 100_000));
      }
      throw Object.assign(new Error('client went away'), { code: 'ECONNRESET' });
    })(),
  );
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Compares without vitest diffing megabytes on failure. */
function equalBytes(actual: Buffer, expected: Buffer): boolean {
  return actual.length === expected.length && actual.equals(expected);
}

const chunkSize = 64 * 1024;
const syntheticBase = randomBytes(chunkSize);

/** Deterministic content: every 64 KiB block is the same random block stamped with its offset. */
function syntheticChunk(offset: number, length: number): Buffer {
  const chunk = Buffer.from(syntheticBase.subarray(0, length));
  if (length >= 4) chunk.writeUInt32BE(offset / chunkSize, 0);
  return chunk;
}

function syntheticRange(start: number, end: number): Buffer {
  const blocks: Buffer[] = [];
  for (let block = Math.floor(start / chunkSize) * chunkSize; block < end; block += chunkSize) {
    blocks.push(syntheticChunk(block, chunkSize));
  }
  const first = Math.floor(start / chunkSize) * chunkSize;
  return Buffer.concat(blocks).subarray(start - first, end - first);
}

function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

// ── a real S3-compatible server on loopback ──────────────────────────────────────────────────────

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
}) => S3rverInstance;

export interface LoopbackS3 {
  endpoint: string;
  bucket: string;
  /** An SDK client on the server, for looking at what the driver stored. */
  client: S3Client;
  /** Driver options for this server and bucket. */
  driverOptions(extra?: Partial<S3DriverOptions>): S3DriverOptions;
  stop(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 (random port, temporary directory) and creates a bucket through the SDK. */
export async function startLoopbackS3(bucket = 'slipway-test'): Promise<LoopbackS3> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  const directory = await mkdtemp(join(tmpdir(), 'slipway-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver's built-in account. (The SDK tags a credentials object it is given, so each user gets its own.)
  const credentials = () => ({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: credentials(),
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    bucket,
    client,
    driverOptions: (extra = {}) => ({
      bucket,
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      ...credentials(),
      prefix: '',
      partSizeMiB: 5,
      redirectSeconds: 0,
      ...extra,
    }),
    async stop() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
