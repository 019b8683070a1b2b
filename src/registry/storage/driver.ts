import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../digest.ts';

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Copies an opened blob into `destination`, resolving once every byte was accepted by it. */
export type BlobCopy = (destination: Writable) => Promise<void>;

export interface BlobStat {
  size: number;
}

/** A blob found in storage by listing, whatever the metadata says of it. */
export interface ListedBlob {
  digest: Digest;
  size: number;
  /** When its bytes were last written. */
  modifiedAt: Date;
}

/** An upload that has storage, whatever the metadata says of it. */
export interface ListedUpload {
  id: string;
  /** When any of its bytes or state were last written. */
  modifiedAt: Date;
}

/**
 * Content-addressed blob storage. Implementations map missing objects to `BlobNotFoundError` and
 * keep every key choice in `paths.ts`. Nothing here knows about repositories: links live in metadata.
 */
export interface BlobDriver {
  readonly kind: string;
  stat(digest: Digest): Promise<BlobStat>;
  /** Opens the blob (or a range of it); fails before returning when the blob is absent. */
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /**
   * Opens the blob (or a range of it) for copying into a socket, the fastest way the driver knows;
   * fails before returning when the blob is absent. The copy does not end the destination.
   */
  openCopy(digest: Digest, range?: ByteRange): Promise<BlobCopy>;
  /** Idempotent: deleting an absent blob succeeds. */
  delete(digest: Digest): Promise<void>;
  /** A short-lived URL clients can fetch the blob from directly, or null to stream through the gateway. */
  redirectUrl(digest: Digest, expiresInSeconds: number): Promise<string | null>;
  /** Creates the upload's storage, or reopens it where a previous process left off. */
  openUpload(uploadId: string): Promise<UploadWriter>;
  /**
   * Every blob in storage, in no particular order. Garbage collection compares this with the metadata to
   * remove blobs whose database commit never happened (a crash between storing the bytes and committing).
   */
  listBlobs(): AsyncIterable<ListedBlob>;
  /** Every upload that has storage, in no particular order; for the same cleanup of uploads. */
  listUploads(): AsyncIterable<ListedUpload>;
  /** Throws when storage cannot be read and written. */
  checkHealth(): Promise<void>;
  /** Releases connections; the driver is not used afterwards. */
  close(): Promise<void>;
}

/**
 * An upload in progress. `size` is the number of bytes durably held, which is where the next append
 * starts, also after a failed append or a restart. It ends in `commit` (moved under its digest) or `abort`.
 */
export interface UploadWriter {
  readonly size: number;
  append(source: Readable, signal?: AbortSignal): Promise<void>;
  /** Everything held so far, for re-hashing when the in-memory hash state was lost. */
  readHeld(): Promise<Readable>;
  commit(digest: Digest): Promise<void>;
  abort(): Promise<void>;
}
