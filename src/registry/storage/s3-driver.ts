import { randomUUID } from 'node:crypto';
import { Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BlobNotFoundError, ConfigError, StorageError, UploadNotFoundError } from '../../errors.ts';
import type { Digest } from '../digest.ts';
import type {
  BlobCopy,
  BlobDriver,
  BlobStat,
  ByteRange,
  ListedBlob,
  ListedUpload,
  UploadWriter,
} from './driver.ts';
import { digestOfBlobKey, storagePaths, uploadIdOfKey } from './paths.ts';

/** The `storage.s3` config section (defaults as in the config schema). */
export interface S3DriverOptions {
  bucket: string;
  region?: string;
  /** For S3-compatible servers (MinIO, Ceph, R2, …); clients following redirects must reach it too, unless… */
  endpoint?: string | undefined;
  /** …pre-signed URLs name this endpoint instead: the bucket as clients reach it (an ingress, a public name). */
  publicEndpoint?: string | undefined;
  forcePathStyle?: boolean;
  /** Both or neither; without them the SDK's default credential chain applies (env, profile, IMDS, …). */
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  /** Key prefix for everything Slipway stores, treated as a folder ("registry" and "registry/" are the same). */
  prefix?: string;
  /** Multipart part size in MiB (at least 5): also the most an upload holds in memory. */
  partSizeMiB?: number;
  /** Seconds a pre-signed blob GET URL stays valid; 0 streams blobs through the gateway. */
  redirectSeconds?: number;
}

const mib = 1024 * 1024;
/** S3's floor for every part but the last, and its ceiling on part count and on a single CopyObject. */
const minPartSize = 5 * mib;
const maxParts = 10_000;
const maxSingleCopy = 5 * 1024 * mib;
const copyPartSize = 512 * mib;
const copyConcurrency = 4;

/**
 * Blobs in an S3 bucket, under `<prefix>` + the keys from `paths.ts`.
 *
 * Uploads keep their bytes in S3, never in the gateway's memory beyond one part, and resume in any
 * process from a small JSON record. Under `uploads/<id>/`:
 * - `data`: the target of the upload's S3 multipart upload, and once completed ("staged") the object
 *   holding every byte of the upload;
 * - `tail`: the bytes after the last full part (S3 refuses non-final parts under 5 MiB). The next
 *   append reads it back into its part buffer, so tail + new bytes fill the next part;
 * - `state.json`: multipart UploadId, uploaded parts (number, ETag, size), the tail's length, the part
 *   size, or the staged length. It is written only after the bytes it describes are stored, so it
 *   never claims more than S3 holds; `size` is computed from it.
 *
 * A tail is only rewritten as "old tail + new bytes", so if a process dies between writing the tail and
 * the record, the record's (shorter) tail length still names a correct prefix: tails are read with a
 * byte range. A part uploaded but not yet recorded is overwritten by the next append (same number).
 *
 * readHeld: S3 cannot read parts of an unfinished multipart upload, so readHeld completes the multipart
 * upload (tail as last part) into `data` and streams that object; commit then only copies `data` to the
 * blob key. This is also what commit does anyway, so the re-hash-then-commit path after a restart costs
 * nothing extra. Appending after that (not something the registry does, but allowed) first re-streams
 * `data` into a fresh multipart upload ("unstage"), bounded by one part in memory.
 *
 * Commit completes into `data` and copies it to the blob key (CopyObject up to 5 GiB, multipart
 * UploadPartCopy above), so readers never see a partial blob. Multipart uploads orphaned by a crash
 * between CreateMultipartUpload and recording its id cannot be found again: give the bucket an
 * AbortIncompleteMultipartUpload lifecycle rule.
 */
export class S3Driver implements BlobDriver {
  readonly kind = 's3';
  readonly #objects: S3Objects;
  readonly #partSize: number;
  readonly #redirectSeconds: number;

  constructor(options: S3DriverOptions) {
    if (!options.bucket) throw new ConfigError('storage.s3.bucket is required');
    if ((options.accessKeyId === undefined) !== (options.secretAccessKey === undefined)) {
      throw new ConfigError('storage.s3.accessKeyId and storage.s3.secretAccessKey must be set together');
    }
    const partSizeMiB = options.partSizeMiB ?? 16;
    if (!Number.isInteger(partSizeMiB) || partSizeMiB * mib < minPartSize) {
      throw new ConfigError(
        `storage.s3.partSizeMiB must be a whole number of at least 5, not ${partSizeMiB}`,
      );
    }
    const config: S3ClientConfig = {
      region: options.region ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.accessKeyId && options.secretAccessKey
        ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
        : {}),
    };
    const client = new S3Client(config);
    const signer = options.publicEndpoint
      ? new S3Client({ ...config, endpoint: options.publicEndpoint })
      : client;
    this.#objects = new S3Objects(client, signer, options.bucket, normalizePrefix(options.prefix ?? ''));
    this.#partSize = partSizeMiB * mib;
    this.#redirectSeconds = options.redirectSeconds ?? 0;
  }

  async stat(digest: Digest): Promise<BlobStat> {
    const size = await this.#objects.head(storagePaths.blob(digest), () => new BlobNotFoundError(digest));
    return { size };
  }

  async openCopy(digest: Digest, range?: ByteRange): Promise<BlobCopy> {
    const body = await this.read(digest, range);
    return (destination) => pipeline(body, destination, { end: false });
  }

  read(digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.#objects.get(storagePaths.blob(digest), range, () => new BlobNotFoundError(digest));
  }

  delete(digest: Digest): Promise<void> {
    return this.#objects.delete(storagePaths.blob(digest));
  }

  async redirectUrl(digest: Digest, expiresInSeconds: number): Promise<string | null> {
    if (this.#redirectSeconds <= 0 || expiresInSeconds <= 0) return null;
    return this.#objects.presignGet(storagePaths.blob(digest), expiresInSeconds);
  }

  async openUpload(uploadId: string): Promise<UploadWriter> {
    const keys = uploadKeys(uploadId);
    const text = await this.#objects.getText(keys.state);
    const record = text === null ? freshRecord(this.#partSize) : parseRecord(text, keys.state);
    return new S3UploadWriter(this.#objects, uploadId, keys, record);
  }

  async *listBlobs(): AsyncIterable<ListedBlob> {
    for await (const object of this.#objects.list(`${storagePaths.blobsRoot}/`)) {
      const digest = digestOfBlobKey(object.key);
      if (digest) yield { digest, size: object.size, modifiedAt: object.modifiedAt };
    }
  }

  /** An upload is its state and tail objects; the newest of them says when it last changed. */
  async *listUploads(): AsyncIterable<ListedUpload> {
    const uploads = new Map<string, Date>();
    for await (const object of this.#objects.list(`${storagePaths.uploadsRoot}/`)) {
      const id = uploadIdOfKey(object.key);
      if (!id) continue;
      const seen = uploads.get(id);
      if (!seen || seen < object.modifiedAt) uploads.set(id, object.modifiedAt);
    }
    for (const [id, modifiedAt] of uploads) yield { id, modifiedAt };
  }

  async checkHealth(): Promise<void> {
    const token = randomUUID();
    const key = storagePaths.healthProbe(token);
    await this.#objects.put(key, Buffer.from(token));
    try {
      const text = await this.#objects.getText(key);
      if (text !== token)
        throw new StorageError('S3 returned different bytes than written to the health probe');
    } finally {
      await this.#objects.delete(key);
    }
  }

  async close(): Promise<void> {
    this.#objects.destroy();
  }
}

// ── uploads ──────────────────────────────────────────────────────────────────────────────────────

interface UploadKeys {
  data: string;
  tail: string;
  state: string;
}

function uploadKeys(uploadId: string): UploadKeys {
  return {
    data: storagePaths.uploadData(uploadId),
    tail: storagePaths.uploadTail(uploadId),
    state: storagePaths.uploadState(uploadId),
  };
}

interface PartRecord {
  number: number;
  etag: string;
  size: number;
}

/** What `state.json` holds. Held bytes = `staged` bytes of `data` if staged, else parts then tail. */
interface UploadRecord {
  version: 1;
  /** Fixed for the upload's life, so a config change between restarts cannot strand a larger tail. */
  partSize: number;
  /** The multipart upload on `data`. When staged, a leftover of an interrupted unstage (holds nothing). */
  multipartId?: string;
  parts: PartRecord[];
  tailSize: number;
  /** Set once `data` holds exactly this many bytes, all of the upload; then parts is empty and tailSize 0. */
  staged?: number;
}

function freshRecord(partSize: number): UploadRecord {
  return { version: 1, partSize, parts: [], tailSize: 0 };
}

function parseRecord(text: string, key: string): UploadRecord {
  let value: Partial<UploadRecord>;
  try {
    value = JSON.parse(text) as Partial<UploadRecord>;
  } catch {
    throw new StorageError(`upload state ${key} is not valid JSON`);
  }
  const wholeNumber = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  const valid =
    value.version === 1 &&
    wholeNumber(value.partSize) &&
    value.partSize! >= minPartSize &&
    wholeNumber(value.tailSize) &&
    value.tailSize! < value.partSize! &&
    (value.multipartId === undefined || typeof value.multipartId === 'string') &&
    (value.staged === undefined || wholeNumber(value.staged)) &&
    Array.isArray(value.parts) &&
    value.parts.every((p, i) => p.number === i + 1 && typeof p.etag === 'string' && wholeNumber(p.size));
  if (!valid) throw new StorageError(`upload state ${key} is not an upload record this version understands`);
  return value as UploadRecord;
}

/** Collects bytes into one part-sized buffer, handing it to `flush` whenever it fills up. */
class PartBuffer {
  readonly bytes: Buffer;
  filled = 0;

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size);
  }

  get held(): Buffer {
    return this.bytes.subarray(0, this.filled);
  }

  async write(chunk: Buffer, flush: (full: Buffer) => Promise<void>): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, this.bytes.length - this.filled);
      chunk.copy(this.bytes, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      if (this.filled === this.bytes.length) {
        await flush(this.bytes);
        this.filled = 0;
      }
    }
  }
}

class S3UploadWriter implements UploadWriter {
  readonly #objects: S3Objects;
  readonly #uploadId: string;
  readonly #keys: UploadKeys;
  #record: UploadRecord;
  /** The tail's bytes when this writer wrote them, to skip reading them back. */
  #tail: Buffer | null = null;

  constructor(objects: S3Objects, uploadId: string, keys: UploadKeys, record: UploadRecord) {
    this.#objects = objects;
    this.#uploadId = uploadId;
    this.#keys = keys;
    this.#record = record;
  }

  get size(): number {
    const record = this.#record;
    return record.staged ?? record.parts.reduce((sum, part) => sum + part.size, 0) + record.tailSize;
  }

  async append(source: Readable, signal?: AbortSignal): Promise<void> {
    if (signal) {
      signal.throwIfAborted();
      addAbortSignal(signal, source);
    }
    if (this.#record.staged !== undefined) await this.#unstage();
    const buffer = new PartBuffer(this.#record.partSize);
    buffer.filled = await this.#loadTail(buffer.bytes);
    let storageFailed = false;
    const flush = async (part: Buffer) => {
      try {
        await this.#uploadRecordedPart(part);
      } catch (error) {
        storageFailed = true;
        throw error;
      }
    };
    try {
      for await (const chunk of source) await buffer.write(toBuffer(chunk), flush);
    } catch (error) {
      // The source failed (client gone, aborted): keep what arrived, so `size` says where to resume.
      if (!storageFailed) await this.#saveTail(buffer.held).catch(() => {});
      throw error;
    }
    await this.#saveTail(buffer.held);
  }

  async readHeld(): Promise<Readable> {
    const size = this.size;
    if (size === 0) return Readable.from([]);
    const record = this.#record;
    if (record.staged === undefined && record.parts.length === 0) {
      if (this.#tail) return Readable.from([Buffer.from(this.#tail)]);
      return this.#objects.get(this.#keys.tail, { start: 0, end: size - 1 }, () => this.#uploadGone());
    }
    if (record.staged === undefined) await this.#stage();
    return this.#objects.get(this.#keys.data, { start: 0, end: size - 1 }, () => this.#uploadGone());
  }

  async commit(digest: Digest): Promise<void> {
    const target = storagePaths.blob(digest);
    const size = this.size;
    if (this.#record.staged === undefined && this.#record.parts.length === 0) {
      // Everything fits in the tail (or nothing was written): one PUT, no multipart upload.
      const bytes = Buffer.allocUnsafe(this.#record.tailSize);
      await this.#loadTail(bytes);
      await this.#objects.put(target, bytes);
    } else {
      if (this.#record.staged === undefined) await this.#stage();
      try {
        await this.#objects.copy(this.#keys.data, target, size, () => this.#uploadGone());
      } catch (error) {
        // A retried commit whose first attempt copied, then died before cleaning up.
        if (!(error instanceof UploadNotFoundError) || (await this.#objects.sizeOf(target)) !== size)
          throw error;
      }
    }
    await this.#removeObjects();
  }

  abort(): Promise<void> {
    return this.#removeObjects();
  }

  async #removeObjects(): Promise<void> {
    if (this.#record.multipartId)
      await this.#objects.abortMultipart(this.#keys.data, this.#record.multipartId);
    await Promise.all([this.#objects.delete(this.#keys.data), this.#objects.delete(this.#keys.tail)]);
    await this.#objects.delete(this.#keys.state);
    this.#record = freshRecord(this.#record.partSize);
    this.#tail = null;
  }

  async #save(next: UploadRecord): Promise<void> {
    await this.#objects.put(this.#keys.state, Buffer.from(JSON.stringify(next)));
    this.#record = next;
  }

  /** Reads the recorded tail into `into`; returns its length. */
  async #loadTail(into: Buffer): Promise<number> {
    const size = this.#record.tailSize;
    if (size === 0) return 0;
    if (this.#tail?.length === size) return this.#tail.copy(into);
    const body = await this.#objects.get(this.#keys.tail, { start: 0, end: size - 1 }, () =>
      this.#uploadGone(),
    );
    let filled = 0;
    for await (const chunk of body) {
      const bytes = toBuffer(chunk);
      filled += bytes.copy(into, filled, 0, Math.min(bytes.length, size - filled));
    }
    if (filled !== size) {
      throw new StorageError(
        `upload ${this.#uploadId}: tail object has ${filled} bytes, its record says ${size}`,
      );
    }
    return size;
  }

  /** Writes the bytes after the last full part as the tail, then records them. */
  async #saveTail(held: Buffer): Promise<void> {
    // Same length as recorded means nothing arrived since the last durable state (a flush resets it to 0).
    if (held.length === this.#record.tailSize) return;
    const copy = Buffer.from(held);
    if (copy.length > 0) await this.#objects.put(this.#keys.tail, copy);
    await this.#save({ ...this.#record, tailSize: copy.length });
    this.#tail = copy.length > 0 ? copy : null;
  }

  async #multipartId(): Promise<string> {
    if (this.#record.multipartId) return this.#record.multipartId;
    const id = await this.#objects.createMultipart(this.#keys.data);
    await this.#save({ ...this.#record, multipartId: id });
    return id;
  }

  /** Uploads a full part after the recorded ones and records it; the tail went into it. */
  async #uploadRecordedPart(part: Buffer): Promise<void> {
    const number = this.#record.parts.length + 1;
    const etag = await this.#uploadPart(await this.#multipartId(), number, part);
    await this.#save({
      ...this.#record,
      parts: [...this.#record.parts, { number, etag, size: part.length }],
      tailSize: 0,
    });
    this.#tail = null;
  }

  #uploadPart(multipartId: string, number: number, bytes: Buffer): Promise<string> {
    if (number > maxParts) {
      throw new StorageError(
        `upload ${this.#uploadId} exceeds S3's ${maxParts} parts of ${this.#record.partSize / mib} MiB; raise storage.s3.partSizeMiB`,
      );
    }
    return this.#objects.uploadPart(this.#keys.data, multipartId, number, bytes);
  }

  /** Completes the multipart upload, tail as the last part, into `data`, and records it as staged. */
  async #stage(): Promise<void> {
    const { multipartId, parts, tailSize, partSize } = this.#record;
    const size = this.size;
    if (!multipartId)
      throw new StorageError(`upload ${this.#uploadId}: parts recorded without a multipart upload`);
    const completed: CompletedPart[] = parts.map((p) => ({ PartNumber: p.number, ETag: p.etag }));
    if (tailSize > 0) {
      const tail = Buffer.allocUnsafe(tailSize);
      await this.#loadTail(tail);
      const number = parts.length + 1;
      completed.push({ PartNumber: number, ETag: await this.#uploadPart(multipartId, number, tail) });
    }
    try {
      await this.#objects.completeMultipart(this.#keys.data, multipartId, completed);
    } catch (error) {
      // Completed by an attempt that died before recording it? Any `data` of the held length holds
      // exactly the held bytes: every version of it was a prefix of this append-only upload.
      if ((await this.#objects.sizeOf(this.#keys.data).catch(() => null)) !== size) throw error;
    }
    await this.#save({ version: 1, partSize, parts: [], tailSize: 0, staged: size });
    this.#tail = null;
  }

  /**
   * Appending to a staged upload: re-streams `data` into a fresh multipart upload (the old object stays
   * readable until that one completes), then records parts + tail in one write. Until then the record
   * still says staged, so a crash midway loses only this work.
   */
  async #unstage(): Promise<void> {
    const { staged, multipartId: leftover, ...rest } = this.#record;
    if (leftover) await this.#objects.abortMultipart(this.#keys.data, leftover);
    // In memory only: the next #multipartId() records a new id over the aborted one.
    this.#record = { ...rest, staged: staged! };
    const buffer = new PartBuffer(this.#record.partSize);
    const parts: PartRecord[] = [];
    const flush = async (part: Buffer) => {
      const number = parts.length + 1;
      parts.push({
        number,
        etag: await this.#uploadPart(await this.#multipartId(), number, part),
        size: part.length,
      });
    };
    if (staged! > 0) {
      const body = await this.#objects.get(this.#keys.data, { start: 0, end: staged! - 1 }, () =>
        this.#uploadGone(),
      );
      for await (const chunk of body) await buffer.write(toBuffer(chunk), flush);
    }
    const tail = Buffer.from(buffer.held);
    if (tail.length > 0) await this.#objects.put(this.#keys.tail, tail);
    const { version, partSize, multipartId } = this.#record;
    await this.#save({
      version,
      partSize,
      ...(multipartId ? { multipartId } : {}),
      parts,
      tailSize: tail.length,
    });
    this.#tail = tail.length > 0 ? tail : null;
  }

  #uploadGone(): UploadNotFoundError {
    return new UploadNotFoundError(this.#uploadId);
  }
}

// ── S3 calls ─────────────────────────────────────────────────────────────────────────────────────

/** One bucket and prefix; every SDK error leaves here as a typed error or a `StorageError`. */
class S3Objects {
  readonly #client: S3Client;
  /** Signs the URLs handed to clients: the same client, or one for the public endpoint (no requests). */
  readonly #signer: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(client: S3Client, signer: S3Client, bucket: string, prefix: string) {
    this.#client = client;
    this.#signer = signer;
    this.#bucket = bucket;
    this.#prefix = prefix;
  }

  destroy(): void {
    this.#client.destroy();
    if (this.#signer !== this.#client) this.#signer.destroy();
  }

  async head(key: string, notFound: () => Error): Promise<number> {
    const out = await this.#call('HeadObject', key, notFound, () =>
      this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) })),
    );
    return out.ContentLength ?? 0;
  }

  /** The object's size, or null when it does not exist. */
  sizeOf(key: string): Promise<number | null> {
    return this.head(key, () => new MissingObject()).catch((error: unknown) => {
      if (error instanceof MissingObject) return null;
      throw error;
    });
  }

  async get(key: string, range: ByteRange | undefined, notFound: () => Error): Promise<Readable> {
    const out = await this.#call('GetObject', key, notFound, () =>
      this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      ),
    );
    const body = toReadable(out.Body);
    if (!range) return body;
    // Some S3-compatible servers answer a range with more than asked (s3rver: `bytes=0-0` as the whole
    // object); never hand that on. Less than asked is a range past the end, as S3 clamps it.
    const wanted = range.end - range.start + 1;
    if (out.ContentLength === undefined || out.ContentLength === wanted) return body;
    const servedStart = Number(/^bytes (\d+)-/.exec(out.ContentRange ?? '')?.[1] ?? 0);
    if (servedStart !== range.start) {
      body.destroy();
      throw new StorageError(
        `S3 GetObject of s3://${this.#bucket}/${this.#key(key)} answered bytes=${range.start}-${range.end} ` +
          `with ${out.ContentRange ?? 'the whole object'}`,
      );
    }
    return out.ContentLength > wanted ? limitBytes(body, wanted) : body;
  }

  /** A small object's content as text, or null when it does not exist. */
  async getText(key: string): Promise<string | null> {
    let body: Readable;
    try {
      body = await this.get(key, undefined, () => new MissingObject());
    } catch (error) {
      if (error instanceof MissingObject) return null;
      throw error;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(toBuffer(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.#call('PutObject', key, undefined, () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(key),
          Body: body,
          ContentLength: body.length,
        }),
      ),
    );
  }

  /** Idempotent, as S3's DeleteObject is. */
  async delete(key: string): Promise<void> {
    await this.#call('DeleteObject', key, undefined, () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) })),
    );
  }

  /** Server-side copy; `gone` makes the error for a missing source. */
  async copy(source: string, target: string, size: number, gone: () => Error): Promise<void> {
    const copySource = `${this.#bucket}/${encodeKey(this.#key(source))}`;
    if (size <= maxSingleCopy) {
      await this.#call('CopyObject', target, gone, () =>
        this.#client.send(
          new CopyObjectCommand({ Bucket: this.#bucket, Key: this.#key(target), CopySource: copySource }),
        ),
      );
      return;
    }
    // Above 5 GiB S3 only copies in parts.
    const partSize = Math.max(copyPartSize, Math.ceil(size / maxParts));
    const ranges: Array<{ number: number; start: number; end: number }> = [];
    for (let start = 0; start < size; start += partSize) {
      ranges.push({ number: ranges.length + 1, start, end: Math.min(start + partSize, size) - 1 });
    }
    const uploadId = await this.createMultipart(target);
    try {
      const completed: CompletedPart[] = new Array(ranges.length);
      let next = 0;
      const worker = async () => {
        while (next < ranges.length) {
          const range = ranges[next++]!;
          const out = await this.#call('UploadPartCopy', target, gone, () =>
            this.#client.send(
              new UploadPartCopyCommand({
                Bucket: this.#bucket,
                Key: this.#key(target),
                UploadId: uploadId,
                PartNumber: range.number,
                CopySource: copySource,
                CopySourceRange: `bytes=${range.start}-${range.end}`,
              }),
            ),
          );
          const etag = out.CopyPartResult?.ETag;
          if (!etag) throw new StorageError(`S3 UploadPartCopy of ${target} returned no ETag`);
          completed[range.number - 1] = { PartNumber: range.number, ETag: etag };
        }
      };
      await Promise.all(Array.from({ length: Math.min(copyConcurrency, ranges.length) }, worker));
      await this.completeMultipart(target, uploadId, completed);
    } catch (error) {
      await this.abortMultipart(target, uploadId).catch(() => {});
      throw error;
    }
  }

  async createMultipart(key: string): Promise<string> {
    const out = await this.#call('CreateMultipartUpload', key, undefined, () =>
      this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#key(key) })),
    );
    if (!out.UploadId) throw new StorageError(`S3 CreateMultipartUpload of ${key} returned no UploadId`);
    return out.UploadId;
  }

  async uploadPart(key: string, uploadId: string, number: number, bytes: Buffer): Promise<string> {
    const out = await this.#call('UploadPart', key, undefined, () =>
      this.#client.send(
        new UploadPartCommand({
          Bucket: this.#bucket,
          Key: this.#key(key),
          UploadId: uploadId,
          PartNumber: number,
          Body: bytes,
          ContentLength: bytes.length,
        }),
      ),
    );
    if (!out.ETag) throw new StorageError(`S3 UploadPart ${number} of ${key} returned no ETag`);
    return out.ETag;
  }

  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    await this.#call('CompleteMultipartUpload', key, undefined, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: this.#key(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      ),
    );
  }

  /** Gone already, or a server without AbortMultipartUpload (its parts are then the lifecycle rule's). */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.#client.send(
        new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#key(key), UploadId: uploadId }),
      );
    } catch (error) {
      const { name, status } = errorFacts(error);
      if (name === 'NoSuchUpload' || status === 404 || status === 405 || status === 501) return;
      throw failure('AbortMultipartUpload', this.#bucket, this.#key(key), error);
    }
  }

  /** Every object under `prefix`, keys relative to the driver's own prefix. */
  async *list(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: Date }> {
    let token: string | undefined;
    do {
      const page = await this.#call('ListObjectsV2', prefix, undefined, () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#key(prefix),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(this.#prefix)) continue;
        yield {
          key: object.Key.slice(this.#prefix.length),
          size: object.Size ?? 0,
          modifiedAt: object.LastModified ?? new Date(0),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  presignGet(key: string, expiresInSeconds: number): Promise<string> {
    return this.#call('presign GetObject', key, undefined, () =>
      getSignedUrl(this.#signer, new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }), {
        expiresIn: expiresInSeconds,
      }),
    );
  }

  #key(key: string): string {
    return this.#prefix + key;
  }

  async #call<T>(
    operation: string,
    key: string,
    notFound: (() => Error) | undefined,
    action: () => Promise<T>,
  ): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (notFound && isMissingKey(error)) throw notFound();
      throw failure(operation, this.#bucket, this.#key(key), error);
    }
  }
}

/** Internal marker for "absent" where absence is an answer, not an error. */
class MissingObject extends Error {}

function errorFacts(error: unknown): { name: string; status: number | undefined; message: string } {
  const e = error as { name?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    status: e?.$metadata?.httpStatusCode,
    message: typeof e?.message === 'string' ? e.message : String(error),
  };
}

/** NoSuchKey from GET, a bodiless 404 from HEAD; not a missing bucket, which is misconfiguration. */
function isMissingKey(error: unknown): boolean {
  const { name, status } = errorFacts(error);
  if (name === 'NoSuchKey' || name === 'NotFound') return true;
  return status === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload';
}

/** The SDK's errors name the operation's outcome, never credentials; the message says what and where. */
function failure(operation: string, bucket: string, key: string, error: unknown): StorageError {
  const { name, status, message } = errorFacts(error);
  return new StorageError(
    `S3 ${operation} of s3://${bucket}/${key} failed${status ? ` (HTTP ${status})` : ''}: ${name}: ${message}`,
    { cause: error },
  );
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed ? `${trimmed}/` : '';
}

/** A key as CopySource wants it: URL-encoded, slashes kept. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('upload streams must carry bytes');
}

/** The first `length` bytes of `body`; the rest is not read. */
function limitBytes(body: Readable, length: number): Readable {
  return Readable.from(
    (async function* () {
      let left = length;
      for await (const chunk of body) {
        const bytes = toBuffer(chunk);
        if (bytes.length >= left) {
          yield bytes.subarray(0, left);
          return;
        }
        left -= bytes.length;
        yield bytes;
      }
    })(),
    { objectMode: false },
  );
}

function toReadable(body: unknown): Readable {
  if (body instanceof Readable) return body;
  if (body && typeof (body as ReadableStream).getReader === 'function') {
    return Readable.fromWeb(body as WebReadableStream);
  }
  if (body === undefined) return Readable.from([]);
  throw new StorageError('S3 returned a response body of an unexpected kind');
}
