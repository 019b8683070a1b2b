import { LRUCache } from 'lru-cache';
import type { Digest } from '../digest.ts';
import type { RepositoryName, TagName } from '../names.ts';
import type { StoredManifest } from '../store.ts';

export interface MetadataCacheOptions {
  /** Bytes of manifest content kept in memory. */
  maxManifestBytes: number;
  /**
   * How long an entry is trusted. Writes through this process invalidate at once; the TTL bounds how
   * long another replica's change can go unseen.
   */
  ttlMs: number;
}

/** Keeps the hot path of pulls (tag → digest → manifest, repository-blob links) out of the database. */
export class MetadataCache {
  readonly #tags: LRUCache<string, Digest>;
  readonly #manifests: LRUCache<string, StoredManifest>;
  readonly #blobSizes: LRUCache<string, number>;
  readonly #tagLists: LRUCache<string, readonly string[]>;

  constructor(options: MetadataCacheOptions) {
    const ttl = options.ttlMs;
    this.#tags = new LRUCache({ max: 100_000, ttl });
    this.#blobSizes = new LRUCache({ max: 200_000, ttl });
    this.#tagLists = new LRUCache({ maxSize: 2_000_000, sizeCalculation: (tags) => tags.length + 1, ttl });
    this.#manifests = new LRUCache({
      maxSize: options.maxManifestBytes,
      sizeCalculation: (m) => m.content.length + 200,
      ttl,
    });
  }

  getTag(repository: RepositoryName, tag: TagName): Digest | undefined {
    return this.#tags.get(`${repository}:${tag}`);
  }

  setTag(repository: RepositoryName, tag: string, digest: Digest): void {
    this.#tags.set(`${repository}:${tag}`, digest);
  }

  forgetTag(repository: RepositoryName, tag: string): void {
    this.#tags.delete(`${repository}:${tag}`);
    this.#tagLists.delete(repository);
  }

  /** Every tag of the repository in byte order, for paging without the database. */
  getTagList(repository: RepositoryName): readonly string[] | undefined {
    return this.#tagLists.get(repository);
  }

  setTagList(repository: RepositoryName, tags: readonly string[]): void {
    this.#tagLists.set(repository, tags);
  }

  getManifest(repository: RepositoryName, digest: Digest): StoredManifest | undefined {
    return this.#manifests.get(`${repository}@${digest}`);
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

  setBlobSize(repository: RepositoryName, digest: Digest, size: number): void {
    this.#blobSizes.set(`${repository}@${digest}`, size);
  }

  forgetBlob(repository: RepositoryName, digest: Digest): void {
    this.#blobSizes.delete(`${repository}@${digest}`);
  }

  /** After garbage collection removed blobs: drop every link to them. */
  forgetBlobEverywhere(digests: ReadonlySet<string>): void {
    for (const key of this.#blobSizes.keys()) {
      if (digests.has(key.slice(key.indexOf('@') + 1))) this.#blobSizes.delete(key);
    }
  }
}
