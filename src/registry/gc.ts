import type { Database } from '../db/database.ts';
import type { Digest } from './digest.ts';
import type { RegistryMetrics } from './metrics.ts';
import type { BlobDriver, ListedBlob } from './storage/driver.ts';

export interface GcPolicy {
  /** Untagged manifests younger than this are kept (pushes in progress, tag restores). */
  untaggedGraceSeconds: number;
  /** Unreferenced blobs uploaded or linked more recently than this are kept (a push's layers before its manifest). */
  blobGraceSeconds: number;
  /** Upload sessions idle for longer than this are abandoned. */
  uploadExpirySeconds: number;
}

export interface GcReport {
  /** Uploads removed, orphans included. */
  uploads: number;
  manifests: number;
  /** Blobs removed, orphans included. */
  blobs: number;
  bytes: number;
  /** Blobs and uploads found in storage without metadata, removed once older than their grace period. */
  orphans: number;
}

export interface GcHooks {
  expireUpload(id: string): Promise<void>;
  forgetBlobs(digests: ReadonlySet<string>): void;
  forgetManifest(repository: string, digest: Digest): void;
}

const gcLockKey = 0x51_1b_6c;
const rowKeys = {
  uploads: { column: 'id', type: 'uuid' },
  blobs: { column: 'digest', type: 'text' },
  blob_holds: { column: 'digest', type: 'text' },
} as const;
const batchSize = 500;

const unreachableManifests = `
  WITH RECURSIVE edges (repository_id, parent, child) AS (
    SELECT repository_id, manifest_digest, child_digest FROM manifest_children
    UNION ALL
    SELECT repository_id, subject_digest, digest FROM manifests WHERE subject_digest IS NOT NULL
  ), live (repository_id, digest) AS (
    SELECT repository_id, digest FROM tags
    UNION
    SELECT e.repository_id, e.child FROM edges e JOIN live l ON l.repository_id = e.repository_id AND l.digest = e.parent
  )
  SELECT m.repository_id, r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
   WHERE m.pushed_at <= now() - make_interval(secs => $1)
     AND NOT EXISTS (SELECT 1 FROM live l WHERE l.repository_id = m.repository_id AND l.digest = m.digest)
   LIMIT ${batchSize}`;

const unreferencedBlobCondition = `
  b.state = 'live' AND b.created_at <= now() - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest AND rb.linked_at > now() - make_interval(secs => $1))`;

/** Stricter, without a grace period: no manifest references the blob and no repository links it. */
const unusedBlobCondition = `
  b.state = 'live'
  AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)`;

/**
 * Online mark-and-sweep. Each deletion re-checks its condition under a row lock, and pushes take the
 * same locks, so a push that references an object either wins (and the object stays) or sees it gone
 * (and is told to upload it again). A blob is first marked `deleting`, then its bytes and row are
 * removed: a crash in between leaves a row that is never served and is finished by the next run.
 * Bytes stored without a row (a crash between the storage commit and the database commit) are found by
 * listing storage, given a `deleting` row once older than the grace period, and removed the same way.
 */
export class GarbageCollector {
  readonly #db: Database;
  readonly #driver: BlobDriver;
  readonly #metrics: RegistryMetrics;
  readonly #hooks: GcHooks;

  constructor(db: Database, driver: BlobDriver, metrics: RegistryMetrics, hooks: GcHooks) {
    this.#db = db;
    this.#driver = driver;
    this.#metrics = metrics;
    this.#hooks = hooks;
  }

  /** Runs one collection, or returns null when another process is already collecting. */
  run(policy: GcPolicy): Promise<GcReport | null> {
    return this.#db.tryWithLock(gcLockKey, async () => {
      const report: GcReport = { uploads: 0, manifests: 0, blobs: 0, bytes: 0, orphans: 0 };
      report.orphans = await this.#expireOrphanUploads(policy.uploadExpirySeconds);
      report.uploads = report.orphans + (await this.#expireUploads(policy.uploadExpirySeconds));
      report.manifests = await this.#sweepManifests(policy.untaggedGraceSeconds);
      report.orphans += await this.#adoptOrphanBlobs(policy.blobGraceSeconds);
      const blobs = await this.#sweepBlobs(policy.blobGraceSeconds);
      report.blobs = blobs.count;
      report.bytes = blobs.bytes;
      this.#metrics.gcDeleted.inc({ kind: 'upload' }, report.uploads);
      this.#metrics.gcDeleted.inc({ kind: 'manifest' }, report.manifests);
      this.#metrics.gcDeleted.inc({ kind: 'blob' }, report.blobs);
      return report;
    });
  }

  async #expireUploads(expirySeconds: number): Promise<number> {
    const { rows } = await this.#db.query<{ id: string }>(
      `SELECT id FROM uploads WHERE updated_at <= now() - make_interval(secs => $1) LIMIT ${batchSize * 10}`,
      [expirySeconds],
    );
    for (const { id } of rows) await this.#hooks.expireUpload(id);
    return rows.length;
  }

  /** Uploads with storage but no row: the process stopped between creating the two. */
  async #expireOrphanUploads(expirySeconds: number): Promise<number> {
    let expired = 0;
    const listing = olderThan(this.#driver.listUploads(), expirySeconds);
    for await (const { id } of this.#withoutRows('uploads', listing, (upload) => upload.id)) {
      await this.#hooks.expireUpload(id);
      expired++;
    }
    return expired;
  }

  /**
   * Gives stored blobs without a row a `deleting` row, which the blob sweep then finishes. Blobs held
   * for something other than images (archived build logs) have no row and are left alone.
   */
  async #adoptOrphanBlobs(graceSeconds: number): Promise<number> {
    let adopted = 0;
    const digestOf = (listed: ListedBlob) => listed.digest;
    const listing = olderThan(this.#driver.listBlobs(), graceSeconds);
    const unheld = this.#withoutRows('blob_holds', this.#withoutRows('blobs', listing, digestOf), digestOf);
    for await (const blob of unheld) {
      // A push that stored the same digest meanwhile has inserted its row first: nothing happens.
      const { rowCount } = await this.#db.query(
        `INSERT INTO blobs (digest, size, state) VALUES ($1, $2, 'deleting') ON CONFLICT (digest) DO NOTHING`,
        [blob.digest, blob.size],
      );
      adopted += rowCount;
    }
    return adopted;
  }

  /** The entries of `listing` that have no row in `table`, looked up a batch at a time. */
  async *#withoutRows<T>(
    table: keyof typeof rowKeys,
    listing: AsyncIterable<T>,
    keyOf: (entry: T) => string,
  ): AsyncIterable<T> {
    const { column, type } = rowKeys[table];
    for await (const batch of batches(listing, batchSize)) {
      const { rows } = await this.#db.query<{ key: string }>(
        `SELECT ${column}::text AS key FROM ${table} WHERE ${column} = ANY($1::${type}[])`,
        [batch.map(keyOf)],
      );
      const known = new Set(rows.map((row) => row.key));
      for (const entry of batch) if (!known.has(keyOf(entry))) yield entry;
    }
  }

  /** Deleting an index can orphan its children, so sweep until a pass removes nothing. */
  async #sweepManifests(graceSeconds: number): Promise<number> {
    let total = 0;
    for (let pass = 0; pass < 20; pass++) {
      const { rows } = await this.#db.query<{ repository_id: number; name: string; digest: Digest }>(
        unreachableManifests,
        [graceSeconds],
      );
      let deleted = 0;
      for (const row of rows) {
        if (await this.deleteManifestIfUnreachable(row.repository_id, row.digest)) {
          this.#hooks.forgetManifest(row.name, row.digest);
          deleted++;
        }
      }
      total += deleted;
      if (deleted === 0) break;
    }
    return total;
  }

  /**
   * Deletes the manifest unless a tag, an index listing it, or its existing subject keeps it, checked
   * under the manifest's row lock; true when it was deleted. Its children and referrers may become
   * unreachable in turn. The caller drops it from caches.
   */
  async deleteManifestIfUnreachable(repositoryId: number, digest: Digest): Promise<boolean> {
    const deleted = await this.#db.transaction(async (tx) => {
      const locked = await tx.query(
        'SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE',
        [repositoryId, digest],
      );
      if (locked.rowCount === 0) return false;
      const { rows } = await tx.query<{ reachable: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM tags WHERE repository_id = $1 AND digest = $2)
             OR EXISTS (SELECT 1 FROM manifest_children WHERE repository_id = $1 AND child_digest = $2)
             OR EXISTS (SELECT 1 FROM manifests m JOIN manifests s
                          ON s.repository_id = m.repository_id AND s.digest = m.subject_digest
                         WHERE m.repository_id = $1 AND m.digest = $2) AS reachable`,
        [repositoryId, digest],
      );
      if (rows[0]?.reachable) return false;
      await tx.query('DELETE FROM manifests WHERE repository_id = $1 AND digest = $2', [
        repositoryId,
        digest,
      ]);
      return true;
    });
    return deleted;
  }

  async #sweepBlobs(graceSeconds: number): Promise<{ count: number; bytes: number }> {
    const deleted = new Set<string>();
    let bytes = 0;
    for (;;) {
      const { rows } = await this.#db.query<{ digest: Digest }>(
        `SELECT b.digest FROM blobs b WHERE ${unreferencedBlobCondition} LIMIT ${batchSize}`,
        [graceSeconds],
      );
      let marked = 0;
      for (const { digest } of rows) if (await this.#markDeleting(digest, graceSeconds)) marked++;
      if (marked === 0) break;
      bytes += await this.#finishDeleting(deleted);
    }
    bytes += await this.#finishDeleting(deleted);
    if (deleted.size > 0) this.#hooks.forgetBlobs(deleted);
    return { count: deleted.size, bytes };
  }

  /**
   * Removes at once those of `digests` that no manifest references and no repository links, in any
   * repository: for callers that just unlinked them (cache eviction). Unlike a collection, no grace
   * period applies, so a blob linked anywhere, even by a push that has not sent its manifest yet,
   * stays. The same row locks as a collection keep a concurrent push or mount safe.
   */
  async deleteUnusedBlobs(digests: Iterable<Digest>): Promise<{ count: number; bytes: number }> {
    const marked: Digest[] = [];
    for (const digest of new Set(digests)) {
      if (await this.#markDeleting(digest, null)) marked.push(digest);
    }
    const deleted = new Set<string>();
    let bytes = 0;
    for (let start = 0; start < marked.length; start += batchSize) {
      bytes += await this.#finishDeleting(deleted, marked.slice(start, start + batchSize));
    }
    if (deleted.size > 0) this.#hooks.forgetBlobs(deleted);
    return { count: deleted.size, bytes };
  }

  /**
   * Marks the blob `deleting` if, under its row lock, it is still unreferenced past the grace period,
   * or, with no grace period (null), unused altogether.
   */
  async #markDeleting(digest: Digest, graceSeconds: number | null): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const locked = await tx.query('SELECT 1 FROM blobs WHERE digest = $1 FOR UPDATE', [digest]);
      if (locked.rowCount === 0) return false;
      const { rowCount } =
        graceSeconds === null
          ? await tx.query(
              `UPDATE blobs b SET state = 'deleting' WHERE b.digest = $1 AND ${unusedBlobCondition}`,
              [digest],
            )
          : await tx.query(
              `UPDATE blobs b SET state = 'deleting' WHERE b.digest = $2 AND ${unreferencedBlobCondition}`,
              [graceSeconds, digest],
            );
      return rowCount > 0;
    });
  }

  /**
   * Removes the bytes and rows of blobs marked `deleting`: those of `only`, or a batch of all of them,
   * including those a crashed run left.
   */
  async #finishDeleting(deleted: Set<string>, only?: readonly Digest[]): Promise<number> {
    const { rows } = await this.#db.query<{ digest: Digest }>(
      `SELECT digest FROM blobs WHERE state = 'deleting' AND ($1::text[] IS NULL OR digest = ANY($1::text[]))
        LIMIT ${batchSize}`,
      [only ?? null],
    );
    let bytes = 0;
    for (const { digest } of rows) {
      const size = await this.#db.transaction(async (tx) => {
        const { rows: locked } = await tx.query<{ size: number }>(
          `SELECT size FROM blobs WHERE digest = $1 AND state = 'deleting' FOR UPDATE`,
          [digest],
        );
        if (locked.length === 0) return null;
        await this.#driver.delete(digest);
        await tx.query('DELETE FROM blobs WHERE digest = $1', [digest]);
        return locked[0]!.size;
      });
      if (size !== null) {
        deleted.add(digest);
        bytes += size;
      }
    }
    return bytes;
  }
}

async function* olderThan<T extends { modifiedAt: Date }>(
  listing: AsyncIterable<T>,
  seconds: number,
): AsyncIterable<T> {
  const cutoff = Date.now() - seconds * 1000;
  for await (const entry of listing) if (entry.modifiedAt.getTime() <= cutoff) yield entry;
}

async function* batches<T>(items: AsyncIterable<T>, size: number): AsyncIterable<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
