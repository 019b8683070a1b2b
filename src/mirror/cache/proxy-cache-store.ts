import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Database } from '../../db/database.ts';
import { digestHex, type Digest } from '../../registry/digest.ts';
import { OciError, type OciErrorCode } from '../../registry/errors.ts';
import type { LocalRegistryStore, VerifiedBlobUpload } from '../../registry/local-store.ts';
import type { Reference, RepositoryName, TagName } from '../../registry/names.ts';
import type { BlobCopy, ByteRange } from '../../registry/storage/driver.ts';
import type {
  Actor,
  BlobIntent,
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
import { BlobFill, FillDigestError, FillSizeError } from './blob-fill.ts';
import { CheckedTags } from './checked-tags.ts';
import { FillLeases, type FillLease } from './fill-leases.ts';
import { NegativeCache } from './negative-cache.ts';
import { findProxyTag, recordFetchedTag, recordRevalidatedTag, type ProxyTag } from './proxy-tags.ts';
import type { PullTracker } from './pull-tracker.ts';
import { SingleFlight } from './single-flight.ts';
import type { ProxyRoute, ProxyUpstreams } from './upstreams.ts';

export interface ProxyCacheStoreOptions {
  db: Database;
  local: LocalRegistryStore;
  upstreams: ProxyUpstreams;
  /** A local directory for blobs being fetched (they stream to clients from there). */
  spoolDir: string;
  /** How long a replica's claim on fetching a blob outlives the replica. Default 30 s. */
  fillLeaseSeconds?: number;
  /** How long to wait for another replica's fetch of a blob before giving up. Default 15 min. */
  maxFillWaitSeconds?: number;
  /** Told of manifests served from cache, so eviction knows what was pulled lately. */
  pulls?: PullTracker;
}

export interface ProxyCacheLogger {
  warn(details: object, message: string): void;
}

interface RunningFill {
  fill: BlobFill;
  /** Repositories the blob is linked to once stored: the first asked; the others joined. */
  repositories: Set<RepositoryName>;
}

/** How often a replica waiting for another's fetch of a blob looks whether it is stored. */
const fillPollMs = 200;

/**
 * The registry with pull-through caches in front of it. Repositories under an upstream's namespace
 * (`dockerhub/library/nginx`) are filled from that upstream on demand and kept in the local store
 * under the same name, so they are served byte-exact by the ordinary paths; every other repository
 * goes to the local store untouched. Proxied repositories are read-only.
 *
 * Manifests by digest are cached for good. Tags are trusted for the upstream's freshness period, then
 * revalidated with a HEAD; when the upstream is down or rate-limited, the cached copy is served stale.
 * A missing blob is fetched once per digest however many clients ask at once, across replicas too;
 * every client receives the bytes as they arrive (see `BlobFill`), and the blob is committed to
 * storage once its digest checks.
 */
export class ProxyCacheStore implements RegistryStore {
  readonly #db: Database;
  readonly #local: LocalRegistryStore;
  readonly #upstreams: ProxyUpstreams;
  readonly #manifestFills = new SingleFlight<string, StoredManifest>();
  readonly #fills = new Map<Digest, RunningFill>();
  readonly #fillStarts = new SingleFlight<Digest, void>();
  readonly #leases: FillLeases;
  readonly #spoolDir: string;
  readonly #maxFillWaitMs: number;
  readonly #notFound = new NegativeCache();
  readonly #checkedTags = new CheckedTags();
  readonly #pulls: PullTracker | undefined;
  #logger: ProxyCacheLogger | undefined;

  constructor(options: ProxyCacheStoreOptions) {
    this.#db = options.db;
    this.#local = options.local;
    this.#upstreams = options.upstreams;
    this.#spoolDir = options.spoolDir;
    this.#leases = new FillLeases(options.db, { ttlSeconds: options.fillLeaseSeconds ?? 30 });
    this.#maxFillWaitMs = (options.maxFillWaitSeconds ?? 900) * 1000;
    this.#pulls = options.pulls;
  }

  /**
   * Removes spool files a crashed process left behind: files untouched for an hour (a live fill
   * writes its spool continuously; another process may share the directory).
   */
  async sweepSpool(): Promise<void> {
    const entries = await readdir(this.#spoolDir).catch(() => []);
    const before = Date.now() - 3600_000;
    for (const name of entries) {
      const path = join(this.#spoolDir, name);
      const { mtimeMs } = await stat(path).catch(() => ({ mtimeMs: Infinity }));
      if (mtimeMs < before) await rm(path, { force: true });
    }
  }

  /** Where problems that no client sees (a fill that failed after its clients had left) are told. */
  useLogger(logger: ProxyCacheLogger): void {
    this.#logger = logger;
  }

  // ── manifests ──────────────────────────────────────────────────────────────────────────────

  async getManifest(repository: RepositoryName, reference: Reference): Promise<StoredManifest> {
    const route = this.#upstreams.route(repository);
    if (!route) return this.#local.getManifest(repository, reference);
    if (reference.kind === 'digest') {
      // Counts for the tags that serve it, fetched or not (a fetched index's tag may be older).
      this.#pulls?.digestPulled(repository, reference.digest);
      const cached = await this.#cached(repository, reference.digest);
      if (cached) return withStatus(cached, 'HIT');
      return this.#manifestFills.run(`${repository}@${reference.digest}`, () =>
        this.#fetchManifest(route, repository, reference.digest),
      );
    }
    const tag = reference.tag;
    const freshness = route.upstream.freshnessSeconds;
    const known = await this.#checkedTag(repository, tag, freshness);
    const cached = known && (await this.#cached(repository, known.digest));
    if (known && cached && known.ageSeconds < freshness) {
      this.#pulls?.tagPulled(repository, tag);
      return withStatus(cached, 'HIT');
    }
    // A fetch or a revalidation records the pull with the tag itself.
    return this.#manifestFills.run(`${repository}:${tag}`, () =>
      cached
        ? this.#revalidate(route, repository, tag, cached)
        : this.#fetchManifest(route, repository, tag, tag),
    );
  }

  /** The tag as last checked upstream: from memory while fresh, else as the database has it. */
  async #checkedTag(repository: RepositoryName, tag: TagName, freshness: number): Promise<ProxyTag | null> {
    const key = `${repository}:${tag}`;
    const remembered = this.#checkedTags.get(key);
    if (remembered && remembered.ageSeconds < freshness) return remembered;
    const stored = await findProxyTag(this.#db, repository, tag);
    if (stored) this.#checkedTags.remember(key, stored);
    return stored;
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
    const stored =
      tag === undefined
        ? await this.#local.storeFetchedManifest(repository, fetched.digest, fetched.body, fetched.mediaType)
        : await this.#storeTagged(repository, tag, fetched.digest, fetched.body, fetched.mediaType);
    return withStatus(stored, 'MISS');
  }

  /** Stores a manifest fetched for a tag and moves the tag to it: what upstream has now. */
  async #storeTagged(
    repository: RepositoryName,
    tag: TagName,
    digest: Digest,
    body: Buffer,
    mediaType: string,
  ): Promise<StoredManifest> {
    const stored = await this.#local.storeFetchedManifest(repository, digest, body, mediaType, {
      tag,
      alsoInTransaction: (tx, id) => recordFetchedTag(tx, id, tag, digest),
    });
    this.#checkedTags.checked(`${repository}:${tag}`, digest);
    return stored;
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
        this.#checkedTags.checked(`${repository}:${tag}`, cached.digest);
        return withStatus(cached, 'REVALIDATED');
      }
      const moved = await this.#cached(repository, head.digest);
      if (moved) {
        await this.#storeTagged(repository, tag, moved.digest, moved.content, moved.mediaType);
        return withStatus(moved, 'MISS');
      }
      const fetched = await route.upstream.client.getManifest(route.remote, head.digest);
      const stored = await this.#storeTagged(
        repository,
        tag,
        fetched.digest,
        fetched.body,
        fetched.mediaType,
      );
      return withStatus(stored, 'MISS');
    } catch (error) {
      const { staleIfError, staleIfDeleted } = route.upstream;
      if ((staleIfError && isTransient(error)) || (staleIfDeleted && isNotFound(error))) {
        this.#pulls?.tagPulled(repository, tag);
        return withStatus(cached, 'STALE');
      }
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

  async statBlob(repository: RepositoryName, digest: Digest, intent?: BlobIntent): Promise<BlobTarget> {
    const route = this.#upstreams.route(repository);
    if (!route) return this.#local.statBlob(repository, digest);
    const filling = this.#joinFill(repository, digest);
    if (filling) return { size: await this.#sizeOf(route, filling) };
    try {
      return await this.#local.statBlob(repository, digest);
    } catch (error) {
      if (!isBlobUnknown(error)) throw error;
    }
    if (intent !== 'download') {
      if (await this.#local.mountBlob(repository, digest, undefined)) {
        return this.#local.statBlob(repository, digest);
      }
      return route.upstream.client.headBlob(route.remote, digest).catch((error: unknown) => {
        throw upstreamFailure(error, 'BLOB_UNKNOWN');
      });
    }
    const fill = await this.#fillOrWait(route, repository, digest);
    if (fill) return { size: await this.#sizeOf(route, fill) };
    return this.#local.statBlob(repository, digest);
  }

  blobRedirectUrl(digest: Digest): Promise<string | null> {
    // Not in storage yet: it streams from the spool.
    if (this.#fills.has(digest)) return Promise.resolve(null);
    return this.#local.blobRedirectUrl(digest);
  }

  async openBlobCopy(repository: RepositoryName, digest: Digest, range?: ByteRange): Promise<BlobCopy> {
    const route = this.#upstreams.route(repository);
    if (!route) return this.#local.openBlobCopy(repository, digest, range);
    const filling = this.#joinFill(repository, digest);
    if (filling) return filling.openCopy(range);
    try {
      return await this.#local.openBlobCopy(repository, digest, range);
    } catch (error) {
      if (!isBlobUnknown(error)) throw error;
    }
    const fill = await this.#fillOrWait(route, repository, digest);
    if (fill) return fill.openCopy(range);
    return this.#local.openBlobCopy(repository, digest, range);
  }

  /** The fill of the blob running in this process, with `repository` added to those it links to. */
  #joinFill(repository: RepositoryName, digest: Digest): BlobFill | null {
    const running = this.#joinableFill(digest);
    running?.repositories.add(repository);
    return running?.fill ?? null;
  }

  /** The fill of the blob running in this process, unless it failed or is going away. */
  #joinableFill(digest: Digest): RunningFill | undefined {
    const running = this.#fills.get(digest);
    return running && !running.fill.retired && !running.fill.failed ? running : undefined;
  }

  async #sizeOf(route: ProxyRoute, fill: BlobFill): Promise<number> {
    try {
      return await fill.size();
    } catch (error) {
      throw fillFailure(route, fill.digest, error);
    }
  }

  /**
   * The blob's fill for `repository` to read from, or null when the blob is stored (and linked)
   * already: stored earlier for another repository, or fetched meanwhile by another replica, which
   * this one waits for rather than fetching the same bytes again.
   */
  async #fillOrWait(route: ProxyRoute, repository: RepositoryName, digest: Digest): Promise<BlobFill | null> {
    await this.#fillStarts.run(digest, async () => {
      // Started while this request looked in storage: join it rather than fetch the blob again.
      if (this.#joinableFill(digest)) return;
      const giveUpAt = Date.now() + this.#maxFillWaitMs;
      for (;;) {
        const lease = await this.#leases.acquire(digest);
        if (lease) {
          // The replica that held the lease may have stored the blob just before letting go.
          if (!(await this.#local.mountBlob(repository, digest, undefined))) {
            return this.#startFill(route, repository, digest, lease);
          }
          return lease.release();
        }
        await delay(fillPollMs);
        if (await this.#local.mountBlob(repository, digest, undefined)) return;
        if (Date.now() > giveUpAt) {
          throw new OciError(
            'UNAVAILABLE',
            `another gateway replica has been fetching blob ${digest} from ${route.upstream.name} for over ${Math.round(this.#maxFillWaitMs / 1000)} s; try again later`,
          );
        }
      }
    });
    const fill = this.#joinFill(repository, digest);
    if (fill) return fill;
    await this.#local.mountBlob(repository, digest, undefined);
    return null;
  }

  async #startFill(route: ProxyRoute, repository: RepositoryName, digest: Digest, lease: FillLease) {
    let fill: BlobFill;
    let storage: VerifiedBlobUpload | undefined;
    try {
      await mkdir(this.#spoolDir, { recursive: true });
      storage = await this.#local.openVerifiedBlob(digest);
      fill = await BlobFill.start({
        digest,
        sink: storage.input,
        spoolPath: join(this.#spoolDir, `${digestHex(digest)}.${randomUUID()}`),
        source: async (offset) => {
          const blob = await route.upstream.client.getBlob(route.remote, digest, { range: offset });
          return { body: blob.body, size: blob.size };
        },
        isResumable,
        onResume: (offset, error) =>
          this.#logger?.warn(
            { err: error, upstream: route.upstream.name, digest, offset },
            'upstream blob download broke off; resuming',
          ),
      });
    } catch (error) {
      await storage?.abort().catch(() => {});
      await lease.release().catch(() => {});
      throw error;
    }
    const running = { fill, repositories: new Set([repository]) };
    this.#fills.set(digest, running);
    void this.#commitFill(route, running, storage, lease);
  }

  /**
   * Commits the verified blob to storage (which received its bytes as they came), then retires the
   * spool; readers still on it finish from it.
   */
  async #commitFill(
    route: ProxyRoute,
    running: RunningFill,
    storage: VerifiedBlobUpload,
    lease: FillLease,
  ): Promise<void> {
    const { fill, repositories } = running;
    const [first] = repositories;
    let stored = false;
    try {
      await fill.done;
      await storage.commit(first!);
      stored = true;
    } catch (error) {
      await storage.abort().catch(() => {});
      this.#logger?.warn(
        { err: error, upstream: route.upstream.name, digest: fill.digest },
        'blob not cached: fetching it from the upstream failed',
      );
    } finally {
      if (this.#fills.get(fill.digest) === running) this.#fills.delete(fill.digest);
      await fill.retire();
      await lease.release().catch(() => {});
    }
    if (!stored) return;
    // Every repository that joined the fill, until it retired, gets the blob linked too.
    for (const repository of repositories) {
      if (repository !== first)
        await this.#local.mountBlob(repository, fill.digest, undefined).catch(() => {});
    }
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

/** Copies a fill's reader into a response without ending it. */
/** Worth asking again from where the download stopped: a transport failure, not an answer. */
function isResumable(error: unknown): boolean {
  if (error instanceof FillSizeError) return false;
  return !(error instanceof UpstreamError) || error instanceof UpstreamUnavailableError;
}

/** A failed fill as its clients see it. */
function fillFailure(route: ProxyRoute, digest: Digest, error: unknown): unknown {
  if (error instanceof FillDigestError || error instanceof FillSizeError) {
    return new OciError(
      'UNAVAILABLE',
      `upstream ${route.upstream.name} sent blob ${digest} wrong (${error.message}); nothing was stored, try again`,
    );
  }
  if (error instanceof UpstreamError) return upstreamFailure(error, 'BLOB_UNKNOWN');
  return new OciError(
    'UNAVAILABLE',
    `fetching blob ${digest} from ${route.upstream.name} failed: ${String(error)}`,
  );
}
