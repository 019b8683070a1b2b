import picomatch from 'picomatch';
import type { Database, Queryable } from '../../db/database.ts';
import type { Digest } from '../../registry/digest.ts';
import type { GarbageCollector } from '../../registry/gc.ts';
import type { MetadataCache } from '../../registry/metadata/cache.ts';
import * as sql from '../../registry/metadata/sql.ts';
import type { RepositoryName, TagName } from '../../registry/names.ts';
import type { CacheMetrics } from './metrics.ts';
import type { PullTracker } from './pull-tracker.ts';
import type { ProxyUpstream, ProxyUpstreams } from './upstreams.ts';

export interface CacheEvictorOptions {
  db: Database;
  upstreams: ProxyUpstreams;
  /** Deletes manifests and blobs with the collector's own checks and locks. */
  gc: GarbageCollector;
  /** Written out before each run, so the pulls this process saw count. */
  pulls?: PullTracker;
  /** The local store's cache, told of the tags, manifests and blob links eviction removed. */
  cache: MetadataCache;
  metrics: CacheMetrics;
}

/** A tag, or an untagged manifest, taken out of the cache. */
export interface EvictedEntry {
  repository: RepositoryName;
  /** Null for a manifest no tag reached (pulled by digest, or left behind by a tag that moved). */
  tag: TagName | null;
  digest: Digest;
}

export interface UpstreamEviction {
  upstream: string;
  /** Null: no budget, nothing evicted. */
  budget: number | null;
  /** Bytes its cached repositories hold after the run. */
  bytes: number;
  evicted: EvictedEntry[];
  /** How much less the cached repositories hold for the entries evicted. */
  evictedBytes: number;
  /** Still over budget with nothing left to evict: what is left is pinned (or was pulled meanwhile). */
  overBudget: boolean;
}

export interface EvictionReport {
  upstreams: UpstreamEviction[];
  /** Blobs deleted from storage because no repository used them any more, and their bytes. */
  blobsDeleted: number;
  bytesDeleted: number;
}

interface Candidate {
  repositoryId: number;
  repository: RepositoryName;
  tag: TagName | null;
  digest: Digest;
  /** When it was last pulled, as the database wrote it (text keeps its microseconds). */
  pulledAt: string;
}

interface Removed {
  digest: Digest;
  tag: TagName | null;
  bytes: number;
  unlinked: Digest[];
}

const evictionLockKey = 0x51_1b_e7;

/**
 * Keeps each upstream's cache within its storage budget. What the cached repositories hold is the
 * distinct blobs linked into them plus their manifests. While that is over budget, the least recently
 * pulled entries go first: unpinned tags, by their last pull, and manifests no tag reaches, by when they
 * were fetched. Evicting a tag deletes the tag (with no event: the upstream still has it, and the next
 * pull fetches it again), then whatever manifests it alone kept, then the repository's links to blobs
 * no remaining manifest of that repository references.
 *
 * Storage is freed only for blobs nothing uses any more: the garbage collector deletes a blob after
 * checking, under the blob's row lock, that no manifest of any repository references it and no
 * repository links it. A layer shared with another cached image or with a local repository therefore
 * stays, and so does one a push is uploading right now.
 */
export class CacheEvictor {
  readonly #db: Database;
  readonly #upstreams: ProxyUpstreams;
  readonly #gc: GarbageCollector;
  readonly #pulls: PullTracker | undefined;
  readonly #cache: MetadataCache;
  readonly #metrics: CacheMetrics;
  /** Upstreams whose gauges were set by the last run, to drop those of upstreams since removed. */
  #gauged = new Set<string>();

  constructor(options: CacheEvictorOptions) {
    this.#db = options.db;
    this.#upstreams = options.upstreams;
    this.#gc = options.gc;
    this.#pulls = options.pulls;
    this.#cache = options.cache;
    this.#metrics = options.metrics;
  }

  /** Runs once over every upstream, or returns null when another process is evicting. */
  run(): Promise<EvictionReport | null> {
    return this.#db.tryWithLock(evictionLockKey, async () => {
      await this.#pulls?.flush();
      const report: EvictionReport = { upstreams: [], blobsDeleted: 0, bytesDeleted: 0 };
      const unlinked = new Set<Digest>();
      for (const upstream of this.#upstreams.list()) {
        const result = await this.#evictUpstream(upstream, unlinked);
        report.upstreams.push(result);
        if (result.evicted.length > 0) {
          this.#metrics.evictions.inc({ upstream: upstream.name }, result.evicted.length);
          this.#metrics.evictedBytes.inc({ upstream: upstream.name }, result.evictedBytes);
        }
      }
      this.#setGauges(report.upstreams);
      const deleted = await this.#gc.deleteUnusedBlobs(unlinked);
      report.blobsDeleted = deleted.count;
      report.bytesDeleted = deleted.bytes;
      return report;
    });
  }

  #setGauges(upstreams: UpstreamEviction[]): void {
    const gauged = new Set(upstreams.map((u) => u.upstream));
    for (const upstream of this.#gauged) {
      if (gauged.has(upstream)) continue;
      this.#metrics.cacheBytes.remove({ upstream });
      this.#metrics.budgetBytes.remove({ upstream });
    }
    for (const { upstream, bytes, budget } of upstreams) {
      this.#metrics.cacheBytes.set({ upstream }, bytes);
      if (budget === null) this.#metrics.budgetBytes.remove({ upstream });
      else this.#metrics.budgetBytes.set({ upstream }, budget);
    }
    this.#gauged = gauged;
  }

  /** How many bytes the upstream's cached repositories hold. */
  cacheBytes(upstream: string): Promise<number> {
    return cacheBytes(this.#db, namespaceOf(upstream));
  }

  async #evictUpstream(upstream: ProxyUpstream, unlinked: Set<Digest>): Promise<UpstreamEviction> {
    const namespace = namespaceOf(upstream.name);
    const budget = upstream.storageBudget;
    let bytes = await cacheBytes(this.#db, namespace);
    const result: UpstreamEviction = {
      upstream: upstream.name,
      budget,
      bytes,
      evicted: [],
      evictedBytes: 0,
      overBudget: false,
    };
    if (budget === null || bytes <= budget) return result;
    const isPinned = pinMatcher(upstream, this.#upstreams);
    let exhausted = true;
    for (const candidate of await listCandidates(this.#db, namespace)) {
      if (bytes <= budget) {
        exhausted = false;
        break;
      }
      if (candidate.tag !== null && isPinned(candidate.repository, candidate.tag)) continue;
      const removed = await this.#evict(namespace, candidate);
      if (!removed) continue;
      bytes -= removed.bytes;
      result.evictedBytes += removed.bytes;
      result.evicted.push({ repository: candidate.repository, tag: removed.tag, digest: removed.digest });
      for (const digest of removed.unlinked) unlinked.add(digest);
    }
    // Exact, whatever pulls filled meanwhile.
    result.bytes = await cacheBytes(this.#db, namespace);
    result.overBudget = exhausted && result.bytes > budget;
    return result;
  }

  /** Removes the entry and what it alone kept; null when it was pulled or moved since it was listed. */
  async #evict(namespace: string, candidate: Candidate): Promise<Removed | null> {
    const { repositoryId, repository } = candidate;
    let digest = candidate.digest;
    if (candidate.tag !== null) {
      const tag = candidate.tag;
      const untagged = await this.#db.transaction((tx) => untagIfNotPulledSince(tx, candidate));
      this.#cache.forgetTag(repository, tag);
      if (untagged === null) return null;
      digest = untagged;
    }
    const reached = await reachableManifests(this.#db, repositoryId, digest);
    const deleted = await this.#deleteUnreachable(repositoryId, reached);
    // An untagged manifest that a tag reaches again, or that is gone already, is not evicted.
    if (candidate.tag === null && deleted.length === 0) return null;
    for (const manifest of deleted) this.#cache.forgetManifest(repository, manifest.digest);
    const unlinked = await unlinkUnreferencedBlobs(
      this.#db,
      repositoryId,
      deleted.flatMap((manifest) => manifest.blobs),
    );
    for (const blob of unlinked) this.#cache.forgetBlob(repository, blob);
    const bytes =
      deleted.reduce((sum, manifest) => sum + manifest.size, 0) +
      (await bytesLeavingNamespace(this.#db, namespace, unlinked));
    return { digest, tag: candidate.tag, bytes, unlinked };
  }

  /** Deletes those of the manifests nothing reaches any more; an index first, then its children. */
  async #deleteUnreachable(repositoryId: number, manifests: ReachedManifest[]): Promise<ReachedManifest[]> {
    const deleted: ReachedManifest[] = [];
    let left = manifests;
    for (let pass = 0; pass < 20 && left.length > 0; pass++) {
      const kept: ReachedManifest[] = [];
      for (const manifest of left) {
        if (await this.#gc.deleteManifestIfUnreachable(repositoryId, manifest.digest)) deleted.push(manifest);
        else kept.push(manifest);
      }
      if (kept.length === left.length) break;
      left = kept;
    }
    return deleted;
  }
}

function namespaceOf(upstream: string): string {
  return `${upstream}/`;
}

/**
 * Whether a cached tag is pinned. A pattern without `:` is a tag glob; `repository:tag` globs match
 * the repository as named under the upstream's namespace (`nginx`) or on the upstream (`library/nginx`).
 */
function pinMatcher(
  upstream: ProxyUpstream,
  upstreams: ProxyUpstreams,
): (repository: RepositoryName, tag: TagName) => boolean {
  const options = { dot: true };
  const rules = upstream.pinned.map((pattern) => {
    const colon = pattern.lastIndexOf(':');
    return {
      repository: colon < 0 ? null : picomatch(pattern.slice(0, colon), options),
      tag: picomatch(colon < 0 ? pattern : pattern.slice(colon + 1), options),
    };
  });
  return (repository, tag) =>
    rules.some((rule) => {
      if (!rule.tag(tag)) return false;
      if (!rule.repository) return true;
      const local = repository.slice(upstream.name.length + 1);
      const remote = upstreams.route(repository)?.remote;
      return rule.repository(local) || (remote !== undefined && rule.repository(remote));
    });
}

// ── SQL ──────────────────────────────────────────────────────────────────────────────────────

/** Distinct live blobs linked into the namespace's repositories, plus their manifests. */
async function cacheBytes(q: Queryable, namespace: string): Promise<number> {
  const { rows } = await q.query<{ bytes: string | number }>(
    `SELECT (SELECT coalesce(sum(b.size), 0) FROM blobs b
              WHERE b.state = 'live'
                AND b.digest IN (SELECT rb.digest FROM repository_blobs rb
                                   JOIN repositories r ON r.id = rb.repository_id
                                  WHERE starts_with(r.name, $1)))
          + (SELECT coalesce(sum(m.size), 0) FROM manifests m
               JOIN repositories r ON r.id = m.repository_id
              WHERE starts_with(r.name, $1)) AS bytes`,
    [namespace],
  );
  return Number(rows[0]?.bytes ?? 0);
}

/**
 * Everything eviction may take in the namespace, least recently pulled first: every tag with its last
 * pull, and every manifest no tag reaches (directly, as an index's child, or as a referrer of one),
 * with when it was fetched. Children and referrers of unreachable manifests are not listed: they go
 * with them.
 */
async function listCandidates(q: Queryable, namespace: string): Promise<Candidate[]> {
  const { rows } = await q.query<{
    repository_id: number;
    repository: string;
    tag: string | null;
    digest: Digest;
    pulled_at: string;
  }>(
    `WITH RECURSIVE cached AS (
       SELECT id, name FROM repositories WHERE starts_with(name, $1)
     ), edges (repository_id, parent, child) AS (
       SELECT mc.repository_id, mc.manifest_digest, mc.child_digest
         FROM manifest_children mc JOIN cached c ON c.id = mc.repository_id
       UNION ALL
       SELECT m.repository_id, m.subject_digest, m.digest
         FROM manifests m JOIN cached c ON c.id = m.repository_id WHERE m.subject_digest IS NOT NULL
     ), live (repository_id, digest) AS (
       SELECT t.repository_id, t.digest FROM tags t JOIN cached c ON c.id = t.repository_id
       UNION
       SELECT e.repository_id, e.child
         FROM edges e JOIN live l ON l.repository_id = e.repository_id AND l.digest = e.parent
     ), candidates AS (
       SELECT c.id AS repository_id, c.name AS repository, t.name AS tag, t.digest,
              coalesce(p.last_pulled_at, t.updated_at) AS pulled_at
         FROM tags t JOIN cached c ON c.id = t.repository_id
         LEFT JOIN proxy_tags p ON p.repository_id = t.repository_id AND p.tag = t.name
       UNION ALL
       SELECT c.id, c.name, NULL, m.digest, m.pushed_at
         FROM manifests m JOIN cached c ON c.id = m.repository_id
        WHERE NOT EXISTS (SELECT 1 FROM live l WHERE l.repository_id = m.repository_id AND l.digest = m.digest)
          AND NOT EXISTS (SELECT 1 FROM manifest_children mc
                           WHERE mc.repository_id = m.repository_id AND mc.child_digest = m.digest)
          AND NOT EXISTS (SELECT 1 FROM manifests s
                           WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest)
     )
     SELECT repository_id, repository, tag, digest, pulled_at::text AS pulled_at FROM candidates
      ORDER BY candidates.pulled_at, repository COLLATE "C", tag COLLATE "C" NULLS FIRST`,
    [namespace],
  );
  return rows.map((row) => ({
    repositoryId: row.repository_id,
    repository: row.repository as RepositoryName,
    tag: row.tag as TagName | null,
    digest: row.digest,
    pulledAt: row.pulled_at,
  }));
}

/**
 * Deletes the tag and its cache record, unless it was pulled (or moved) since it was listed; returns
 * the digest it pointed at. The deletion goes into the tag's history, but no event is recorded.
 */
async function untagIfNotPulledSince(tx: Queryable, candidate: Candidate): Promise<Digest | null> {
  const { rows } = await tx.query<{ digest: Digest; unchanged: boolean }>(
    `SELECT t.digest, coalesce(p.last_pulled_at, t.updated_at) <= $3::timestamptz AS unchanged
       FROM tags t LEFT JOIN proxy_tags p ON p.repository_id = t.repository_id AND p.tag = t.name
      WHERE t.repository_id = $1 AND t.name = $2
        FOR UPDATE OF t`,
    [candidate.repositoryId, candidate.tag, candidate.pulledAt],
  );
  const row = rows[0];
  if (!row?.unchanged) return null;
  await sql.deleteTag(tx, candidate.repositoryId, candidate.tag!, null);
  await tx.query('DELETE FROM proxy_tags WHERE repository_id = $1 AND tag = $2', [
    candidate.repositoryId,
    candidate.tag,
  ]);
  return row.digest;
}

interface ReachedManifest {
  digest: Digest;
  size: number;
  blobs: Digest[];
}

/** The manifest and those it reaches in the repository (an index's children, referrers), with their blobs. */
async function reachableManifests(
  q: Queryable,
  repositoryId: number,
  digest: Digest,
): Promise<ReachedManifest[]> {
  const { rows } = await q.query<{ digest: Digest; size: number | string; blobs: Digest[] }>(
    `WITH RECURSIVE edges (parent, child) AS (
       SELECT manifest_digest, child_digest FROM manifest_children WHERE repository_id = $1
       UNION ALL
       SELECT subject_digest, digest FROM manifests WHERE repository_id = $1 AND subject_digest IS NOT NULL
     ), reach (digest) AS (
       SELECT $2::text
       UNION
       SELECT e.child FROM edges e JOIN reach r ON e.parent = r.digest
     )
     SELECT m.digest, m.size,
            coalesce(array_agg(mb.blob_digest) FILTER (WHERE mb.blob_digest IS NOT NULL), '{}') AS blobs
       FROM reach JOIN manifests m ON m.repository_id = $1 AND m.digest = reach.digest
       LEFT JOIN manifest_blobs mb ON mb.repository_id = m.repository_id AND mb.manifest_digest = m.digest
      GROUP BY m.digest, m.size`,
    [repositoryId, digest],
  );
  return rows.map((row) => ({ digest: row.digest, size: Number(row.size), blobs: row.blobs }));
}

/** Unlinks those of the blobs no manifest left in the repository references; returns them. */
async function unlinkUnreferencedBlobs(
  q: Queryable,
  repositoryId: number,
  blobs: Digest[],
): Promise<Digest[]> {
  if (blobs.length === 0) return [];
  const { rows } = await q.query<{ digest: Digest }>(
    `DELETE FROM repository_blobs rb
      WHERE rb.repository_id = $1 AND rb.digest = ANY($2::text[])
        AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.repository_id = $1 AND mb.blob_digest = rb.digest)
      RETURNING rb.digest`,
    [repositoryId, [...new Set(blobs)]],
  );
  return rows.map((row) => row.digest);
}

/** The bytes of those blobs no repository of the namespace links any more. */
async function bytesLeavingNamespace(q: Queryable, namespace: string, blobs: Digest[]): Promise<number> {
  if (blobs.length === 0) return 0;
  const { rows } = await q.query<{ bytes: string | number }>(
    `SELECT coalesce(sum(b.size), 0) AS bytes FROM blobs b
      WHERE b.digest = ANY($2::text[]) AND b.state = 'live'
        AND NOT EXISTS (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                         WHERE rb.digest = b.digest AND starts_with(r.name, $1))`,
    [namespace, blobs],
  );
  return Number(rows[0]?.bytes ?? 0);
}
