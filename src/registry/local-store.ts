import { randomUUID } from 'node:crypto';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Database, Queryable } from '../db/database.ts';
import { BlobNotFoundError, UploadNotFoundError } from '../errors.ts';
import { computeDigest, createDigester, digestAlgorithm, finishDigest, type Digest } from './digest.ts';
import { OciError } from './errors.ts';
import { parseManifest, referrerArtifactType, type ParsedManifest } from './manifest.ts';
import type { MetadataCache } from './metadata/cache.ts';
import * as sql from './metadata/sql.ts';
import type { RegistryMetrics } from './metrics.ts';
import { parseTag, type Reference, type RepositoryName, type TagName } from './names.ts';
import type { BlobCopy, BlobDriver, ByteRange, UploadWriter } from './storage/driver.ts';
import type {
  Actor,
  BlobTarget,
  Page,
  RepositoryFilter,
  PageResult,
  PushedManifest,
  ReferrerDescriptor,
  RegistryStore,
  StoredManifest,
  TagChangeListener,
  UploadState,
} from './store.ts';
import { HashTracker } from './uploads/hash-tracker.ts';
import { KeyedMutex } from './uploads/keyed-mutex.ts';
import { hashingStream } from './uploads/hashing.ts';

export interface LocalStoreOptions {
  db: Database;
  driver: BlobDriver;
  cache: MetadataCache;
  metrics: RegistryMetrics;
  /** Seconds a pre-signed blob URL stays valid; 0 streams blobs through the gateway. */
  redirectSeconds: number;
  tagChanges?: TagChangeListener;
}

/** The registry proper: metadata in the database, bytes in blob storage. */
/** See `LocalRegistryStore.openVerifiedBlob`. */
export interface VerifiedBlobUpload {
  readonly input: Writable;
  /** Waits for storage to hold everything written to `input`, then makes the blob live in `repository`. */
  commit(repository: RepositoryName): Promise<void>;
  abort(): Promise<void>;
}

export class LocalRegistryStore implements RegistryStore {
  readonly #db: Database;
  readonly #driver: BlobDriver;
  readonly #cache: MetadataCache;
  readonly #metrics: RegistryMetrics;
  readonly #redirectSeconds: number;
  readonly #tagChanges: TagChangeListener | undefined;
  readonly #hashes = new HashTracker();
  readonly #uploadLocks = new KeyedMutex();

  constructor(options: LocalStoreOptions) {
    this.#db = options.db;
    this.#driver = options.driver;
    this.#cache = options.cache;
    this.#metrics = options.metrics;
    this.#redirectSeconds = options.redirectSeconds;
    this.#tagChanges = options.tagChanges;
  }

  // ── manifests ──────────────────────────────────────────────────────────────────────────────

  async getManifest(repository: RepositoryName, reference: Reference): Promise<StoredManifest> {
    const digest =
      reference.kind === 'digest' ? reference.digest : await this.#resolveTag(repository, reference.tag);
    const manifest =
      this.#cache.getManifest(repository, digest) ??
      (await this.#cache.loadManifest(repository, digest, () =>
        sql.findManifest(this.#db, repository, digest),
      ));
    if (!manifest) throw manifestUnknown(reference);
    return manifest;
  }

  async #resolveTag(repository: RepositoryName, tag: TagName): Promise<Digest> {
    const digest =
      this.#cache.getTag(repository, tag) ??
      (await this.#cache.loadTag(repository, tag, () => sql.findTagDigest(this.#db, repository, tag)));
    if (!digest) throw manifestUnknown({ kind: 'tag', tag });
    return digest;
  }

  async putManifest(
    repository: RepositoryName,
    reference: Reference,
    body: Buffer,
    contentType: string | undefined,
    extraTags: string[],
    actor: Actor,
  ): Promise<PushedManifest> {
    const manifest = parseManifest(body, contentType);
    const digest = computeDigest(
      body,
      reference.kind === 'digest' ? digestAlgorithm(reference.digest) : 'sha256',
    );
    if (reference.kind === 'digest' && reference.digest !== digest) {
      throw new OciError(
        'DIGEST_INVALID',
        `manifest digest is ${digest}, not ${reference.digest} as in the URL`,
      );
    }
    const tags = [
      ...new Set([...(reference.kind === 'tag' ? [reference.tag] : []), ...extraTags.map(parseTag)]),
    ];
    const artifactType = referrerArtifactType(manifest, body);

    await this.#db.transaction(async (tx) => {
      const repositoryId = await sql.ensureRepository(tx, repository);
      await this.#checkReferencedBlobs(tx, repositoryId, manifest);
      await sql.insertManifest(tx, repositoryId, digest, manifest, body, artifactType);
      const moved: string[] = [];
      for (const tag of tags) {
        if ((await sql.moveTag(tx, repositoryId, tag, digest, actor.name)) !== digest) moved.push(tag);
      }
      if (moved.length > 0) {
        await this.#tagChanges?.tagsMoved(tx, {
          repository,
          digest,
          mediaType: manifest.mediaType,
          tags: moved,
          actor: actor.name,
        });
      }
    });

    this.#cache.setManifest(repository, { digest, mediaType: manifest.mediaType, content: body });
    for (const tag of tags) this.#cache.forgetTag(repository, tag);
    this.#metrics.manifestsPushed.inc({ media_type: manifest.mediaType });
    return { digest, tags, ...(manifest.subject ? { subject: manifest.subject.digest } : {}) };
  }

  /**
   * Stores a manifest exactly as another registry sent it (the pull-through cache): unlike a push, the
   * blobs it references need not be here, since they are fetched when asked for, and no push event is
   * recorded. `tag`, when given, moves to it; `alsoInTransaction` writes alongside, atomically.
   */
  async storeFetchedManifest(
    repository: RepositoryName,
    digest: Digest,
    body: Buffer,
    mediaType: string,
    options: {
      tag?: TagName;
      alsoInTransaction?: (tx: Queryable, repositoryId: number) => Promise<void>;
    } = {},
  ): Promise<StoredManifest> {
    const actual = computeDigest(body, digestAlgorithm(digest));
    if (actual !== digest) {
      throw new OciError('DIGEST_INVALID', `manifest digest is ${actual}, not ${digest} as fetched`);
    }
    const manifest = parseManifest(body, mediaType);
    const artifactType = referrerArtifactType(manifest, body);
    await this.#db.transaction(async (tx) => {
      const repositoryId = await sql.ensureRepository(tx, repository);
      await sql.insertManifest(tx, repositoryId, digest, manifest, body, artifactType);
      if (options.tag !== undefined) await sql.moveTag(tx, repositoryId, options.tag, digest, null);
      await options.alsoInTransaction?.(tx, repositoryId);
    });
    const stored = { digest, mediaType: manifest.mediaType, content: body };
    this.#cache.setManifest(repository, stored);
    if (options.tag !== undefined) this.#cache.forgetTag(repository, options.tag);
    return stored;
  }

  /** Config and layers must be readable in the repository with the sizes the manifest claims. */
  async #checkReferencedBlobs(tx: Queryable, repositoryId: number, manifest: ParsedManifest): Promise<void> {
    const missing = await sql.lockLinkedBlobs(tx, repositoryId, [
      ...new Set(manifest.blobs.map((b) => b.digest)),
    ]);
    if (missing.size > 0) {
      const list = [...missing];
      throw new OciError(
        'MANIFEST_BLOB_UNKNOWN',
        `manifest references ${list.length === 1 ? 'a blob' : `${list.length} blobs`} not pushed to this repository: ${list.slice(0, 5).join(', ')}`,
        { detail: { digests: list } },
      );
    }
    for (const descriptor of manifest.blobs) {
      const size = await sql.lockLiveBlob(tx, descriptor.digest);
      if (size !== null && size !== descriptor.size) {
        throw new OciError(
          'MANIFEST_INVALID',
          `descriptor for ${descriptor.digest} says ${descriptor.size} bytes but the blob has ${size}`,
        );
      }
    }
  }

  async deleteManifest(repository: RepositoryName, reference: Reference, actor: Actor): Promise<void> {
    const repositoryId = await this.#repositoryIdOrUnknown(repository);
    if (reference.kind === 'tag') {
      const previous = await this.#db.transaction(async (tx) => {
        const digest = await sql.deleteTag(tx, repositoryId, reference.tag, actor.name);
        if (digest) {
          await this.#tagChanges?.tagsDeleted(tx, {
            repository,
            digest,
            tags: [reference.tag],
            actor: actor.name,
          });
        }
        return digest;
      });
      this.#cache.forgetTag(repository, reference.tag);
      if (!previous) throw manifestUnknown(reference);
      return;
    }
    const deletedTags = await this.#db.transaction(async (tx) => {
      const tags = await sql.deleteManifest(tx, repositoryId, reference.digest, actor.name);
      if (tags && tags.length > 0) {
        await this.#tagChanges?.tagsDeleted(tx, {
          repository,
          digest: reference.digest,
          tags,
          actor: actor.name,
        });
      }
      return tags;
    });
    this.#cache.forgetManifest(repository, reference.digest);
    for (const tag of deletedTags ?? []) this.#cache.forgetTag(repository, tag);
    if (!deletedTags) throw manifestUnknown(reference);
  }

  async #repositoryIdOrUnknown(repository: RepositoryName): Promise<number> {
    const id = await sql.findRepositoryId(this.#db, repository);
    if (id === null)
      throw new OciError('NAME_UNKNOWN', `repository ${repository} is not known to this registry`);
    return id;
  }

  // ── blobs ──────────────────────────────────────────────────────────────────────────────────

  async statBlob(repository: RepositoryName, digest: Digest): Promise<BlobTarget> {
    const size =
      this.#cache.getBlobSize(repository, digest) ??
      (await this.#cache.loadBlobSize(repository, digest, () =>
        sql.findLinkedBlobSize(this.#db, repository, digest),
      ));
    if (size === undefined) throw blobUnknown(digest);
    return { size };
  }

  async blobRedirectUrl(digest: Digest): Promise<string | null> {
    return this.#redirectSeconds > 0 ? this.#driver.redirectUrl(digest, this.#redirectSeconds) : null;
  }

  async openBlobCopy(repository: RepositoryName, digest: Digest, range?: ByteRange): Promise<BlobCopy> {
    let copy: BlobCopy;
    try {
      copy = await this.#driver.openCopy(digest, range);
    } catch (error) {
      if (error instanceof BlobNotFoundError) throw blobUnknown(digest);
      throw error;
    }
    const length = range ? range.end - range.start + 1 : this.#cache.getBlobSize(repository, digest);
    return async (destination) => {
      await copy(destination);
      if (length !== undefined) this.#metrics.blobBytesServed.inc(length);
    };
  }

  async deleteBlob(repository: RepositoryName, digest: Digest): Promise<void> {
    const removed = await sql.unlinkBlob(this.#db, repository, digest);
    this.#cache.forgetBlob(repository, digest);
    if (!removed) throw blobUnknown(digest);
  }

  async mountBlob(
    repository: RepositoryName,
    digest: Digest,
    named: RepositoryName | undefined,
    visible?: RepositoryFilter,
  ): Promise<boolean> {
    let from = named;
    if (from === undefined && visible) {
      const [readable] = await visible(await sql.repositoriesHoldingBlob(this.#db, digest, mountCandidates));
      if (readable === undefined) return false;
      from = readable as RepositoryName;
    }
    const mounted = await this.#db.transaction(async (tx) => {
      const sourceSize = from
        ? await sql.findLinkedBlobSize(tx, from, digest)
        : await sql.lockLiveBlob(tx, digest);
      if (sourceSize === null) return false;
      if (from && (await sql.lockLiveBlob(tx, digest)) === null) return false;
      await sql.linkBlob(tx, await sql.ensureRepository(tx, repository), digest);
      return true;
    });
    if (mounted) this.#metrics.uploadsCompleted.inc({ method: 'mount' });
    return mounted;
  }

  // ── uploads ────────────────────────────────────────────────────────────────────────────────

  async startUpload(repository: RepositoryName): Promise<UploadState> {
    const id = randomUUID();
    await this.#driver.openUpload(id);
    await sql.insertUpload(this.#db, id, repository);
    return { id, repository, size: 0 };
  }

  async getUpload(repository: RepositoryName, id: string): Promise<UploadState> {
    const writer = await this.#openUpload(repository, id);
    return { id, repository, size: writer.size };
  }

  appendUpload(
    repository: RepositoryName,
    id: string,
    chunk: Readable,
    expectedStart?: number,
  ): Promise<UploadState> {
    return this.#uploadLocks.run(id, async () => {
      const writer = await this.#openUpload(repository, id);
      if (expectedStart !== undefined && expectedStart !== writer.size) {
        chunk.resume();
        throw rangeInvalid(
          writer.size,
          `chunk starts at ${expectedStart} but the upload holds ${writer.size} bytes`,
        );
      }
      await this.#appendHashed(id, writer, chunk);
      await sql.touchUpload(this.#db, id);
      return { id, repository, size: writer.size };
    });
  }

  completeUpload(
    repository: RepositoryName,
    id: string,
    digest: Digest,
    lastChunk?: Readable,
  ): Promise<Digest> {
    return this.#uploadLocks.run(id, async () => {
      const writer = await this.#openUpload(repository, id);
      if (lastChunk) await this.#appendHashed(id, writer, lastChunk);
      const actual =
        (digestAlgorithm(digest) === 'sha256' ? this.#hashes.digestOf(id, writer.size) : null) ??
        (await this.#rehash(writer, digest));
      if (actual !== digest) {
        await this.#discardUpload(id, writer);
        throw new OciError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
      }
      await this.#commitBlob(repository, digest, writer);
      await sql.deleteUpload(this.#db, id);
      this.#hashes.forget(id);
      this.#metrics.uploadsCompleted.inc({ method: 'chunked' });
      return digest;
    });
  }

  async cancelUpload(repository: RepositoryName, id: string): Promise<void> {
    await this.#uploadLocks.run(id, async () => {
      const writer = await this.#openUpload(repository, id);
      await this.#discardUpload(id, writer);
    });
  }

  async uploadMonolithic(repository: RepositoryName, digest: Digest, body: Readable): Promise<Digest> {
    const id = randomUUID();
    const writer = await this.#driver.openUpload(id);
    try {
      const hash = createDigester(digestAlgorithm(digest));
      await writer.append(hashingStream(body, hash));
      this.#metrics.blobBytesReceived.inc(writer.size);
      const actual = finishDigest(hash, digestAlgorithm(digest));
      if (actual !== digest)
        throw new OciError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
      await this.#commitBlob(repository, digest, writer);
      this.#metrics.uploadsCompleted.inc({ method: 'monolithic' });
      return digest;
    } catch (error) {
      await writer.abort().catch(() => {});
      throw error;
    }
  }

  /**
   * Storage for a blob whose bytes the caller hashes as they pass by (a pull-through fill), so they
   * are not hashed twice: write them to `input` and end it, then `commit` once the digest checked,
   * or `abort`.
   */
  async openVerifiedBlob(digest: Digest): Promise<VerifiedBlobUpload> {
    const writer = await this.#driver.openUpload(randomUUID());
    const input = new PassThrough({ highWaterMark: 1024 * 1024 });
    const appended = writer.append(input);
    appended.catch(() => {});
    return {
      input,
      commit: async (repository) => {
        await appended;
        this.#metrics.blobBytesReceived.inc(writer.size);
        await this.#commitBlob(repository, digest, writer);
      },
      abort: async () => {
        input.destroy();
        await appended.catch(() => {});
        await writer.abort();
      },
    };
  }

  /** Makes the blob live and readable in the repository; storage moves under the blob row's lock. */
  async #commitBlob(repository: RepositoryName, digest: Digest, writer: UploadWriter): Promise<void> {
    const size = writer.size;
    let reused = false;
    await this.#db.transaction(async (tx) => {
      reused = (await sql.lockLiveBlob(tx, digest)) !== null;
      if (!reused) {
        await sql.upsertBlobLocked(tx, digest, size);
        await writer.commit(digest);
      }
      await sql.linkBlob(tx, await sql.ensureRepository(tx, repository), digest);
    });
    if (reused) await writer.abort();
    this.#cache.setBlobSize(repository, digest, size);
  }

  async #openUpload(repository: RepositoryName, id: string): Promise<UploadWriter> {
    const upload = await sql.findUpload(this.#db, id);
    if (!upload || upload.repository !== repository) {
      throw new OciError('BLOB_UPLOAD_UNKNOWN', `upload ${id} is not known for repository ${repository}`);
    }
    return this.#driver.openUpload(id);
  }

  async #appendHashed(id: string, writer: UploadWriter, chunk: Readable): Promise<void> {
    const start = writer.size;
    const hash = this.#hashes.hasherAt(id, start);
    try {
      await writer.append(hash ? hashingStream(chunk, hash) : chunk);
      this.#hashes.advanced(id, writer.size);
    } catch (error) {
      this.#hashes.forget(id);
      throw error;
    } finally {
      this.#metrics.blobBytesReceived.inc(writer.size - start);
    }
  }

  async #rehash(writer: UploadWriter, expected: Digest): Promise<Digest> {
    const algorithm = digestAlgorithm(expected);
    const hash = createDigester(algorithm);
    for await (const chunk of await writer.readHeld()) hash.update(chunk as Buffer);
    return finishDigest(hash, algorithm);
  }

  async #discardUpload(id: string, writer: UploadWriter): Promise<void> {
    this.#hashes.forget(id);
    await writer.abort();
    await sql.deleteUpload(this.#db, id);
  }

  /** Called by garbage collection for abandoned uploads. */
  async expireUpload(id: string): Promise<void> {
    await this.#uploadLocks.run(id, async () => {
      this.#hashes.forget(id);
      const writer = await this.#driver.openUpload(id).catch((error: unknown) => {
        if (error instanceof UploadNotFoundError) return null;
        throw error;
      });
      await writer?.abort();
      await sql.deleteUpload(this.#db, id);
    });
  }

  // ── listings ───────────────────────────────────────────────────────────────────────────────

  async listTags(repository: RepositoryName, page: Page): Promise<PageResult> {
    const tags =
      this.#cache.getTagList(repository) ??
      (await this.#cache.loadTagList(repository, async () => {
        const all = await sql.listTags(
          this.#db,
          await this.#repositoryIdOrUnknown(repository),
          undefined,
          maxCachedTagList + 1,
        );
        return all.length > maxCachedTagList ? undefined : all;
      }));
    if (!tags) {
      const repositoryId = await this.#repositoryIdOrUnknown(repository);
      return paginate(page, (limit) => sql.listTags(this.#db, repositoryId, page.last, limit));
    }
    return paginate(page, async (limit) => {
      const start = page.last === undefined ? 0 : firstAfter(tags, page.last);
      return tags.slice(start, limit === null ? undefined : start + limit);
    });
  }

  listRepositories(page: Page, visible?: RepositoryFilter): Promise<PageResult> {
    if (!visible) return paginate(page, (limit) => sql.listRepositories(this.#db, page.last, limit));
    return paginate(page, (limit) => this.#listVisible(page.last, limit, visible));
  }

  /** Reads batches in name order and keeps the visible names until `limit` are found. */
  async #listVisible(last: string | undefined, limit: number | null, visible: RepositoryFilter) {
    const batchSize = 500;
    const found: string[] = [];
    let cursor = last;
    while (limit === null || found.length < limit) {
      const batch = await sql.listRepositories(this.#db, cursor, batchSize);
      found.push(...(await visible(batch)));
      if (batch.length < batchSize) break;
      cursor = batch[batch.length - 1];
    }
    return limit === null ? found : found.slice(0, limit);
  }

  async listReferrers(
    repository: RepositoryName,
    subject: Digest,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]> {
    const rows = await sql.listReferrers(this.#db, repository, subject, artifactType);
    return rows.map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType ? { artifactType: r.artifactType } : {}),
      ...(r.annotations ? { annotations: r.annotations } : {}),
    }));
  }

  /**
   * Removes the repository with its tags, manifests and blob links; garbage collection then removes
   * blobs nothing else uses. Unknown repositories answer NAME_UNKNOWN.
   */
  async deleteRepository(repository: RepositoryName): Promise<void> {
    const deleted = await sql.deleteRepository(this.#db, repository);
    this.#cache.forgetRepository(repository);
    if (!deleted) throw new OciError('NAME_UNKNOWN', `repository ${repository} is not known`);
  }

  /** Removes every repository under `namespace/`, as `deleteRepository` does; how many there were. */
  async deleteNamespaceRepositories(namespace: string): Promise<number> {
    const names = await sql.repositoriesInNamespace(this.#db, namespace);
    for (const name of names) await this.deleteRepository(name);
    return names.length;
  }

  /** For garbage collection: drop cached links of blobs it removed. */
  forgetBlobs(digests: ReadonlySet<string>): void {
    this.#cache.forgetBlobEverywhere(digests);
  }

  /** For garbage collection: drop a manifest it removed. */
  forgetManifest(repository: string, digest: Digest): void {
    this.#cache.forgetManifest(repository as RepositoryName, digest);
  }
}

/** Repositories with more tags than this page through the database instead of memory. */
const maxCachedTagList = 100_000;
/** How many holders of a blob a `from`-less mount asks the caller's visibility about. */
const mountCandidates = 100;

/** Index of the first entry greater than `last` in a list sorted by code unit (byte order for tags). */
function firstAfter(sorted: readonly string[], last: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! <= last) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Fetches one row more than asked, to know whether a next page exists. */
async function paginate(page: Page, fetch: (limit: number | null) => Promise<string[]>): Promise<PageResult> {
  if (page.n === undefined) return { items: await fetch(null) };
  if (page.n === 0) return { items: [] };
  const rows = await fetch(page.n + 1);
  if (rows.length <= page.n) return { items: rows };
  const items = rows.slice(0, page.n);
  return { items, next: items[items.length - 1]! };
}

function manifestUnknown(reference: Reference): OciError {
  const what = reference.kind === 'tag' ? `tag ${reference.tag}` : `manifest ${reference.digest}`;
  return new OciError('MANIFEST_UNKNOWN', `${what} is not known to this repository`, {
    detail: reference.kind === 'tag' ? { tag: reference.tag } : { digest: reference.digest },
  });
}

function blobUnknown(digest: Digest): OciError {
  return new OciError('BLOB_UNKNOWN', `blob ${digest} is not known to this repository`, {
    detail: { digest },
  });
}

function rangeInvalid(size: number, message: string): OciError {
  return new OciError('BLOB_UPLOAD_INVALID', message, {
    status: 416,
    headers: { Range: `0-${Math.max(size - 1, 0)}` },
  });
}
