import type { Readable } from 'node:stream';
import type { Database } from '../../db/database.ts';
import type { Digest } from '../../registry/digest.ts';
import { OciError, type OciErrorCode } from '../../registry/errors.ts';
import type { LocalRegistryStore } from '../../registry/local-store.ts';
import type { Reference, RepositoryName, TagName } from '../../registry/names.ts';
import type { BlobCopy, ByteRange } from '../../registry/storage/driver.ts';
import type {
  Actor,
  BlobTarget,
  CacheStatus,
  Page,
  PageResult,
  PushedManifest,
  ReferrerDescriptor,
  RegistryStore,
  RepositoryFilter,
  StoredManifest,
  UploadState,
} from '../../registry/store.ts';
import {
  UpstreamError,
  UpstreamNotFoundError,
  UpstreamRateLimitedError,
  UpstreamUnauthorizedError,
  UpstreamUnavailableError,
} from '../upstream/errors.ts';
import { NegativeCache } from './negative-cache.ts';
import { findProxyTag, recordFetchedTag, recordRevalidatedTag } from './proxy-tags.ts';
import { SingleFlight } from './single-flight.ts';
import type { ProxyRoute, ProxyUpstreams } from './upstreams.ts';

export interface ProxyCacheStoreOptions {
  db: Database;
  local: LocalRegistryStore;
  upstreams: ProxyUpstreams;
}

/**
 * The registry with pull-through caches in front of it. Repositories under an upstream's namespace
 * (`dockerhub/library/nginx`) are filled from that upstream on demand and kept in the local store
 * under the same name, so they are served byte-exact by the ordinary paths; every other repository
 * goes to the local store untouched. Proxied repositories are read-only.
 *
 * Manifests by digest are cached for good. Tags are trusted for the upstream's freshness period, then
 * revalidated with a HEAD; when the upstream is down or rate-limited, the cached copy is served stale.
 * A missing blob is fetched once per digest however many clients ask at once, verified, committed,
 * and then served to all of them.
 */
export class ProxyCacheStore implements RegistryStore {
  readonly #db: Database;
  readonly #local: LocalRegistryStore;
  readonly #upstreams: ProxyUpstreams;
  readonly #manifestFills = new SingleFlight<string, StoredManifest>();
  readonly #blobFills = new SingleFlight<Digest, void>();
  readonly #notFound = new NegativeCache();

  constructor(options: ProxyCacheStoreOptions) {
    this.#db = options.db;
    this.#local = options.local;
    this.#upstreams = options.upstreams;
  }

  // ── manifests ──────────────────────────────────────────────────────────────────────────────

  async getManifest(repository: RepositoryName, reference: Reference): Promise<StoredManifest> {
    const route = this.#upstreams.route(repository);
    if (!route) return this.#local.getManifest(repository, reference);
    if (reference.kind === 'digest') {
      const cached = await this.#cached(repository, reference.digest);
      if (cached) return withStatus(cached, 'HIT');
      return this.#manifestFills.run(`${repository}@${reference.digest}`, () =>
        this.#fetchManifest(route, repository, reference.digest),
      );
    }
    const tag = reference.tag;
    const known = await findProxyTag(this.#db, repository, tag);
    const cached = known && (await this.#cached(repository, known.digest));
    if (known && cached && known.ageSeconds < route.upstream.freshnessSeconds) {
      return withStatus(cached, 'HIT');
    }
    return this.#manifestFills.run(`${repository}:${tag}`, () =>
      cached
        ? this.#revalidate(route, repository, tag, cached)
        : this.#fetchManifest(route, repository, tag, tag),
    );
  }

  async #cached(repository: RepositoryName, digest: Digest): Promise<StoredManifest | null> {
    try {
      return await this.#local.getManifest(repository, { kind: 'digest', digest });
    } catch (error) {
      if (error instanceof OciError && error.code === 'MANIFEST_UNKNOWN') return null;
      throw error;
    }
  }

  /** GET from upstream (by digest, or by tag, which then moves to it), store, serve: a MISS. */
  async #fetchManifest(
    route: ProxyRoute,
    repository: RepositoryName,
    reference: string,
    tag?: TagName,
  ): Promise<StoredManifest> {
    const negativeKey = `${repository}:${reference}`;
    if (this.#notFound.has(negativeKey)) throw manifestNotFound(route, reference, 'recently');
    const fetched = await route.upstream.client
      .getManifest(route.remote, reference)
      .catch((error: unknown) => {
        if (isNotFound(error)) {
          this.#notFound.remember(negativeKey, route.upstream.negativeTtlSeconds * 1000);
          throw manifestNotFound(route, reference);
        }
        throw upstreamFailure(error, 'MANIFEST_UNKNOWN');
      });
    const stored = await this.#local.storeFetchedManifest(
      repository,
      fetched.digest,
      fetched.body,
      fetched.mediaType,
      tag === undefined
        ? {}
        : { tag, alsoInTransaction: (tx, id) => recordFetchedTag(tx, id, tag, fetched.digest) },
    );
    return withStatus(stored, 'MISS');
  }

  /** The tag's freshness ran out: a HEAD tells whether it moved upstream. */
  async #revalidate(
    route: ProxyRoute,
    repository: RepositoryName,
    tag: TagName,
    cached: StoredManifest,
  ): Promise<StoredManifest> {
    try {
      const head = await route.upstream.client.headManifest(route.remote, tag);
      if (head.digest === cached.digest) {
        await recordRevalidatedTag(this.#db, repository, tag);
        return withStatus(cached, 'REVALIDATED');
      }
      const moved = await this.#cached(repository, head.digest);
      if (moved) {
        await this.#local.storeFetchedManifest(repository, moved.digest, moved.content, moved.mediaType, {
          tag,
          alsoInTransaction: (tx, id) => recordFetchedTag(tx, id, tag, moved.digest),
        });
        return withStatus(moved, 'MISS');
      }
      const fetched = await route.upstream.client.getManifest(route.remote, head.digest);
      const stored = await this.#local.storeFetchedManifest(
        repository,
        fetched.digest,
        fetched.body,
        fetched.mediaType,
        { tag, alsoInTransaction: (tx, id) => recordFetchedTag(tx, id, tag, fetched.digest) },
      );
      return withStatus(stored, 'MISS');
    } catch (error) {
      if (route.upstream.staleIfError && isTransient(error)) return withStatus(cached, 'STALE');
      if (isNotFound(error)) {
        this.#notFound.remember(`${repository}:${tag}`, route.upstream.negativeTtlSeconds * 1000);
        throw manifestNotFound(route, tag);
      }
      throw upstreamFailure(error, 'MANIFEST_UNKNOWN');
    }
  }

  putManifest(
    repository: RepositoryName,
    reference: Reference,
    body: Buffer,
    contentType: string | undefined,
    extraTags: string[],
    actor: Actor,
  ): Promise<PushedManifest> {
    this.#refuseWrites(repository);
    return this.#local.putManifest(repository, reference, body, contentType, extraTags, actor);
  }

  deleteManifest(repository: RepositoryName, reference: Reference, actor: Actor): Promise<void> {
    this.#refuseWrites(repository);
    return this.#local.deleteManifest(repository, reference, actor);
  }

  // ── blobs ──────────────────────────────────────────────────────────────────────────────────

  async statBlob(repository: RepositoryName, digest: Digest): Promise<BlobTarget> {
    const route = this.#upstreams.route(repository);
    if (!route) return this.#local.statBlob(repository, digest);
    try {
      return await this.#local.statBlob(repository, digest);
    } catch (error) {
      if (!isBlobUnknown(error)) throw error;
    }
    await this.#fillBlob(route, repository, digest);
    return this.#local.statBlob(repository, digest);
  }

  blobRedirectUrl(digest: Digest): Promise<string | null> {
    return this.#local.blobRedirectUrl(digest);
  }

  async openBlobCopy(repository: RepositoryName, digest: Digest, range?: ByteRange): Promise<BlobCopy> {
    const route = this.#upstreams.route(repository);
    if (!route) return this.#local.openBlobCopy(repository, digest, range);
    try {
      return await this.#local.openBlobCopy(repository, digest, range);
    } catch (error) {
      if (!isBlobUnknown(error)) throw error;
    }
    await this.#fillBlob(route, repository, digest);
    return this.#local.openBlobCopy(repository, digest, range);
  }

  /**
   * Makes the blob readable in the repository: linked when it is stored already (pulled through
   * another repository, or pushed), else fetched from upstream once for every client waiting on it.
   * The fetch runs apart from any client, so one that hangs up does not cut it short for the others.
   */
  async #fillBlob(route: ProxyRoute, repository: RepositoryName, digest: Digest): Promise<void> {
    await this.#blobFills.run(digest, async () => {
      // Checked inside the flight, so a client that missed the previous fill does not start another.
      if (await this.#local.mountBlob(repository, digest, undefined)) return;
      let body: Readable;
      try {
        ({ body } = await route.upstream.client.getBlob(route.remote, digest));
      } catch (error) {
        throw upstreamFailure(error, 'BLOB_UNKNOWN');
      }
      try {
        await this.#local.uploadMonolithic(repository, digest, body);
      } catch (error) {
        body.destroy();
        if (error instanceof OciError && error.code === 'DIGEST_INVALID') {
          throw new OciError(
            'UNAVAILABLE',
            `upstream ${route.upstream.name} sent blob ${digest} with other content; nothing was stored`,
          );
        }
        throw upstreamFailure(error, 'BLOB_UNKNOWN');
      }
    });
    // Filled for another repository of the same digest: link it here too.
    await this.#local.mountBlob(repository, digest, undefined);
  }

  deleteBlob(repository: RepositoryName, digest: Digest): Promise<void> {
    this.#refuseWrites(repository);
    return this.#local.deleteBlob(repository, digest);
  }

  // ── uploads: refused in proxied repositories ────────────────────────────────────────────────

  async startUpload(repository: RepositoryName): Promise<UploadState> {
    this.#refuseWrites(repository);
    return this.#local.startUpload(repository);
  }

  async getUpload(repository: RepositoryName, id: string): Promise<UploadState> {
    this.#refuseWrites(repository);
    return this.#local.getUpload(repository, id);
  }

  async appendUpload(
    repository: RepositoryName,
    id: string,
    chunk: Readable,
    expectedStart?: number,
  ): Promise<UploadState> {
    this.#refuseWrites(repository, chunk);
    return this.#local.appendUpload(repository, id, chunk, expectedStart);
  }

  async completeUpload(
    repository: RepositoryName,
    id: string,
    digest: Digest,
    lastChunk?: Readable,
  ): Promise<Digest> {
    this.#refuseWrites(repository, lastChunk);
    return this.#local.completeUpload(repository, id, digest, lastChunk);
  }

  async cancelUpload(repository: RepositoryName, id: string): Promise<void> {
    this.#refuseWrites(repository);
    return this.#local.cancelUpload(repository, id);
  }

  async uploadMonolithic(repository: RepositoryName, digest: Digest, body: Readable): Promise<Digest> {
    this.#refuseWrites(repository, body);
    return this.#local.uploadMonolithic(repository, digest, body);
  }

  async mountBlob(
    repository: RepositoryName,
    digest: Digest,
    from: RepositoryName | undefined,
    visible?: RepositoryFilter,
  ): Promise<boolean> {
    this.#refuseWrites(repository);
    return this.#local.mountBlob(repository, digest, from, visible);
  }

  /** Throws DENIED for a proxied repository (draining the request body, if any). */
  #refuseWrites(repository: RepositoryName, body?: Readable): void {
    const route = this.#upstreams.route(repository);
    if (!route) return;
    body?.resume();
    throw new OciError(
      'DENIED',
      `${repository} is a pull-through cache of ${route.upstream.url}; push to a repository outside ${route.upstream.name}/`,
    );
  }

  // ── listings: what is cached ───────────────────────────────────────────────────────────────

  listTags(repository: RepositoryName, page: Page): Promise<PageResult> {
    return this.#local.listTags(repository, page);
  }

  listRepositories(page: Page, visible?: RepositoryFilter): Promise<PageResult> {
    return this.#local.listRepositories(page, visible);
  }

  listReferrers(
    repository: RepositoryName,
    subject: Digest,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]> {
    return this.#local.listReferrers(repository, subject, artifactType);
  }
}

function withStatus(manifest: StoredManifest, cacheStatus: CacheStatus): StoredManifest {
  return { ...manifest, cacheStatus };
}

function isBlobUnknown(error: unknown): boolean {
  return error instanceof OciError && error.code === 'BLOB_UNKNOWN';
}

/** Not there upstream; registries such as Docker Hub answer 401 for repositories that do not exist. */
function isNotFound(error: unknown): boolean {
  return error instanceof UpstreamNotFoundError || error instanceof UpstreamUnauthorizedError;
}

/** Failures worth serving a cached copy through: the upstream may well answer later. */
function isTransient(error: unknown): boolean {
  return error instanceof UpstreamUnavailableError || error instanceof UpstreamRateLimitedError;
}

function manifestNotFound(route: ProxyRoute, reference: string, when?: 'recently'): OciError {
  const at = `${route.remote}${reference.includes(':') ? '@' : ':'}${reference}`;
  return new OciError(
    'MANIFEST_UNKNOWN',
    `${at} was ${when === 'recently' ? 'recently ' : ''}not found on upstream ${route.upstream.name} (${route.upstream.url})`,
  );
}

/** An upstream failure as the client should see it: 429 stays 429, not found stays not found. */
function upstreamFailure(error: unknown, unknownCode: OciErrorCode): unknown {
  if (!(error instanceof UpstreamError)) return error;
  if (error instanceof UpstreamRateLimitedError) {
    return new OciError('TOOMANYREQUESTS', error.message, {
      headers: { 'Retry-After': String(error.retryAfterSeconds ?? 60) },
    });
  }
  if (isNotFound(error)) return new OciError(unknownCode, error.message);
  return new OciError('UNAVAILABLE', error.message);
}
