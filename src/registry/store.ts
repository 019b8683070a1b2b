import type { Readable } from 'node:stream';
import type { Queryable } from '../db/database.ts';
import type { Digest } from './digest.ts';
import type { Reference, RepositoryName } from './names.ts';
import type { BlobCopy, ByteRange } from './storage/driver.ts';

/** How a pull-through cache answered: from cache, fetched, checked upstream, or stale on upstream error. */
export type CacheStatus = 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE';

export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  content: Buffer;
  /** Set by a pull-through cache; the routes send it as `X-Cache`. */
  cacheStatus?: CacheStatus;
}

export interface PushedManifest {
  digest: Digest;
  subject?: Digest;
  tags: string[];
}

export interface Page {
  /** Maximum entries; undefined lists everything. */
  n?: number;
  last?: string;
}

export interface PageResult {
  items: string[];
  /** The `last` to ask for the next page, when there may be one. */
  next?: string;
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface UploadState {
  id: string;
  repository: RepositoryName;
  /** Bytes received so far; the next chunk starts here. */
  size: number;
}

export interface BlobTarget {
  size: number;
}

/** Keeps the repositories, of those named, that the caller may see. */
export type RepositoryFilter = (names: string[]) => Promise<string[]>;

/** Who acts, for tag history; and, when access is controlled, which repositories they may list. */
export interface Actor {
  name: string | null;
  visibleAmong?: RepositoryFilter;
}

/** Tags that moved to a manifest, or were removed from one, in one repository. */
export interface TagChange {
  repository: RepositoryName;
  digest: Digest;
  tags: string[];
  /** Who made the change; null when anonymous. */
  actor: string | null;
}

/**
 * Told of every tag change inside the transaction that makes it, so what it writes (events in the
 * outbox) commits or rolls back with the change.
 */
export interface TagChangeListener {
  tagsMoved(tx: Queryable, change: TagChange & { mediaType: string }): Promise<void>;
  tagsDeleted(tx: Queryable, change: TagChange): Promise<void>;
}

/** Why a blob is looked up: for its size alone (HEAD), or to be downloaded next (GET). */
export type BlobIntent = 'probe' | 'download';

/**
 * Everything the /v2 routes ask of a registry. The local store implements it over metadata and blob
 * storage; the pull-through cache implements it around the local store.
 */
export interface RegistryStore {
  getManifest(repository: RepositoryName, reference: Reference): Promise<StoredManifest>;
  putManifest(
    repository: RepositoryName,
    reference: Reference,
    body: Buffer,
    contentType: string | undefined,
    extraTags: string[],
    actor: Actor,
  ): Promise<PushedManifest>;
  deleteManifest(repository: RepositoryName, reference: Reference, actor: Actor): Promise<void>;

  /** With intent `download`, a GET of the blob follows: a store that fetches on demand may start now. */
  statBlob(repository: RepositoryName, digest: Digest, intent?: BlobIntent): Promise<BlobTarget>;
  /** A pre-signed storage URL to send a download to, or null to stream the blob through the gateway. */
  blobRedirectUrl(digest: Digest): Promise<string | null>;
  /** Opens the blob for copying into a response; BLOB_UNKNOWN before anything is written. */
  openBlobCopy(repository: RepositoryName, digest: Digest, range?: ByteRange): Promise<BlobCopy>;
  deleteBlob(repository: RepositoryName, digest: Digest): Promise<void>;

  startUpload(repository: RepositoryName): Promise<UploadState>;
  getUpload(repository: RepositoryName, id: string): Promise<UploadState>;
  /** Appends a chunk; `expectedStart` (from Content-Range) must equal the current size. */
  appendUpload(
    repository: RepositoryName,
    id: string,
    chunk: Readable,
    expectedStart?: number,
  ): Promise<UploadState>;
  completeUpload(
    repository: RepositoryName,
    id: string,
    digest: Digest,
    lastChunk?: Readable,
  ): Promise<Digest>;
  cancelUpload(repository: RepositoryName, id: string): Promise<void>;
  /** One request, one blob: POST or PUT with `?digest=` and the whole body. */
  uploadMonolithic(repository: RepositoryName, digest: Digest, body: Readable): Promise<Digest>;
  /**
   * Links a blob readable in `from` into `repository`; false when it is not there. With no `from`, a
   * blob stored anywhere, or, when `visible` is given, one held by a repository it keeps.
   */
  mountBlob(
    repository: RepositoryName,
    digest: Digest,
    from: RepositoryName | undefined,
    visible?: RepositoryFilter,
  ): Promise<boolean>;

  listTags(repository: RepositoryName, page: Page): Promise<PageResult>;
  /** Repositories with content, in name order; only those `visible` keeps when it is given. */
  listRepositories(page: Page, visible?: RepositoryFilter): Promise<PageResult>;
  listReferrers(
    repository: RepositoryName,
    subject: Digest,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]>;
}
