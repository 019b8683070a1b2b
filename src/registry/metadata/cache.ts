import type { Digest } from '../digest.ts';
import type { RepositoryName, TagName } from '../names.ts';
import type { StoredManifest } from '../store.ts';
import { LoadingCache } from './loading-cache.ts';

export interface MetadataCacheOptions {
  /** Bytes of manifest content kept in memory. */
  maxManifestBytes: number;
  /**
   * How long an entry is trusted. Writes through this process invalidate at once; the TTL bounds how
   * long another replica's change can go unseen.
   */
  ttlMs: number;
}

/**
 * Keeps the hot path of pulls (tag → digest → manifest, repository-blob links) out of the database.
 * Misses load through `load*`: concurrent misses share one query, and a `forget*` while it runs keeps
 * its possibly older answer out of the cache.
 */
export class MetadataCache {
  readonly #tags: LoadingCache<Digest>;
  readonly #manifests: LoadingCache<StoredManifest>;
  readonly #blobSizes: LoadingCache<number>;
  readonly #tagLists: LoadingCache<readonly string[]>;

  constructor(options: MetadataCacheOptions) {
    // lru-cache reads a ttl of 0 as "never expires"; a cacheTtl of 0 means "do not trust it at all".
    const ttl = Math.max(1, options.ttlMs);
    this.#tags = new LoadingCache({ max: 100_000, ttl });
    this.#blobSizes = new LoadingCache({ max: 200_000, ttl });
    this.#tagLists = new LoadingCache({
      maxSize: 2_000_000,
      sizeCalculation: (tags) => tags.length + 1,
      ttl,
    });
    this.#manifests = new LoadingCache({
      maxSize: options.maxManifestBytes,
      sizeCalculation: (m) => m.content.length + 200,
      ttl,
    });
  }

  getTag(repository: RepositoryName, tag: TagName): Digest | undefined {
    return this.#tags.get(`${repository}:${tag}`);
  }

  loadTag(
    repository: RepositoryName,
    tag: TagName,
    load: () => Promise<Digest | null>,
  ): Promise<Digest | undefined> {
    return this.#tags.load(`${repository}:${tag}`, load);
  }

  forgetTag(repository: RepositoryName, tag: string): void {
    this.#tags.delete(`${repository}:${tag}`);
    this.#tagLists.delete(repository);
  }

  /** Every tag of the repository in byte order, for paging without the database. */
  getTagList(repository: RepositoryName): readonly string[] | undefined {
    return this.#tagLists.get(repository);
  }

  /** The list `load` finds; undefined (not cached) when the repository has too many tags to hold. */
  loadTagList(
    repository: RepositoryName,
    load: () => Promise<readonly string[] | undefined>,
  ): Promise<readonly string[] | undefined> {
    return this.#tagLists.load(repository, load);
  }

  getManifest(repository: RepositoryName, digest: Digest): StoredManifest | undefined {
    return this.#manifests.get(`${repository}@${digest}`);
  }

  loadManifest(
    repository: RepositoryName,
    digest: Digest,
    load: () => Promise<StoredManifest | null>,
  ): Promise<StoredManifest | undefined> {
    return this.#manifests.load(`${repository}@${digest}`, load);
  }

  setManifest(repository: RepositoryName, manifest: StoredManifest): void {
    this.#manifests.set(`${repository}@${manifest.digest}`, manifest);
  }

  forgetManifest(repository: RepositoryName, digest: Digest): void {
    this.#manifests.delete(`${repository}@${digest}`);
  }

  getBlobSize(repository: RepositoryName, digest: Digest): number | undefined {
    return this.#blobSizes.get(`${repository}@${digest}`);
  }

  loadBlobSize(
    repository: RepositoryName,
    digest: Digest,
    load: () => Promise<number | null>,
  ): Promise<number | undefined> {
    return this.#blobSizes.load(`${repository}@${digest}`, load);
  }

  setBlobSize(repository: RepositoryName, digest: Digest, size: number): void {
    this.#blobSizes.set(`${repository}@${digest}`, size);
  }

  forgetBlob(repository: RepositoryName, digest: Digest): void {
    this.#blobSizes.delete(`${repository}@${digest}`);
  }

  /** After the repository was deleted: drop everything cached of it. */
  forgetRepository(repository: RepositoryName): void {
    const ours = (key: string) => key.startsWith(`${repository}:`) || key.startsWith(`${repository}@`);
    this.#tags.deleteWhere(ours);
    this.#manifests.deleteWhere(ours);
    this.#blobSizes.deleteWhere(ours);
    this.#tagLists.delete(repository);
  }

  /** After garbage collection removed blobs: drop every link to them. */
  forgetBlobEverywhere(digests: ReadonlySet<string>): void {
    this.#blobSizes.deleteWhere((key) => digests.has(key.slice(key.indexOf('@') + 1)));
  }
}
