import { asBuffer, type Queryable } from '../../db/database.ts';
import type { Digest } from '../digest.ts';
import type { ParsedManifest } from '../manifest.ts';
import type { RepositoryName, TagName } from '../names.ts';

/** SQL for registry metadata. Functions take a `Queryable` so callers choose the transaction. */

export interface ManifestRow {
  digest: Digest;
  mediaType: string;
  content: Buffer;
}

export interface ReferrerRow {
  digest: Digest;
  mediaType: string;
  artifactType: string | null;
  size: number;
  annotations: Record<string, string> | null;
}

export interface TagHistoryEntry {
  tag: string;
  digest: Digest | null;
  previousDigest: Digest | null;
  actor: string | null;
  occurredAt: Date;
}

export async function findRepositoryId(q: Queryable, name: RepositoryName): Promise<number | null> {
  const { rows } = await q.query<{ id: number }>('SELECT id FROM repositories WHERE name = $1', [name]);
  return rows[0]?.id ?? null;
}

/** Deletes the repository; its tags, manifests, blob links and history go with it. */
export async function deleteRepository(q: Queryable, name: RepositoryName): Promise<boolean> {
  const { rowCount } = await q.query('DELETE FROM repositories WHERE name = $1', [name]);
  return rowCount > 0;
}

/** The repositories whose first name component is `namespace`. */
export async function repositoriesInNamespace(q: Queryable, namespace: string): Promise<RepositoryName[]> {
  const { rows } = await q.query<{ name: RepositoryName }>(
    `SELECT name FROM repositories WHERE starts_with(name, $1) ORDER BY name`,
    [`${namespace}/`],
  );
  return rows.map((row) => row.name);
}

export async function ensureRepository(q: Queryable, name: RepositoryName): Promise<number> {
  const existing = await findRepositoryId(q, name);
  if (existing !== null) return existing;
  const { rows } = await q.query<{ id: number }>(
    `INSERT INTO repositories (name) VALUES ($1)
     ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
    [name],
  );
  return rows[0]!.id;
}

/** The size of a live blob the repository may read, or null. */
export async function findLinkedBlobSize(
  q: Queryable,
  repository: RepositoryName,
  digest: Digest,
): Promise<number | null> {
  const { rows } = await q.query<{ size: number }>(
    `SELECT b.size FROM repository_blobs rb
       JOIN repositories r ON r.id = rb.repository_id
       JOIN blobs b ON b.digest = rb.digest
      WHERE r.name = $1 AND rb.digest = $2 AND b.state = 'live'`,
    [repository, digest],
  );
  return rows[0]?.size ?? null;
}

/**
 * Records a blob whose bytes are being committed. Locks the blob row, so garbage collection of the
 * same digest waits for this transaction, and revives a row GC had started deleting.
 */
export async function upsertBlobLocked(q: Queryable, digest: Digest, size: number): Promise<void> {
  await q.query(
    `INSERT INTO blobs (digest, size) VALUES ($1, $2)
     ON CONFLICT (digest) DO UPDATE SET state = 'live', size = EXCLUDED.size`,
    [digest, size],
  );
}

/** Locks a live blob row against garbage collection for the rest of the transaction. */
export async function lockLiveBlob(q: Queryable, digest: Digest): Promise<number | null> {
  const { rows } = await q.query<{ size: number }>(
    `SELECT size FROM blobs WHERE digest = $1 AND state = 'live' FOR SHARE`,
    [digest],
  );
  return rows[0]?.size ?? null;
}

/** Repositories the blob is linked into, in name order (at most `limit`). */
export async function repositoriesHoldingBlob(
  q: Queryable,
  digest: Digest,
  limit: number,
): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>(
    `SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
      WHERE rb.digest = $1 ORDER BY r.name COLLATE "C" LIMIT $2`,
    [digest, limit],
  );
  return rows.map((row) => row.name);
}

export async function linkBlob(q: Queryable, repositoryId: number, digest: Digest): Promise<void> {
  await q.query(
    `INSERT INTO repository_blobs (repository_id, digest) VALUES ($1, $2)
     ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = now()`,
    [repositoryId, digest],
  );
}

export async function unlinkBlob(q: Queryable, repository: RepositoryName, digest: Digest): Promise<boolean> {
  const { rowCount } = await q.query(
    `DELETE FROM repository_blobs rb USING repositories r
      WHERE rb.repository_id = r.id AND r.name = $1 AND rb.digest = $2`,
    [repository, digest],
  );
  return rowCount > 0;
}

/** Digests among `digests` that the repository may not read (not linked, or not live), with locks held on the rest. */
export async function lockLinkedBlobs(
  q: Queryable,
  repositoryId: number,
  digests: Digest[],
): Promise<Set<Digest>> {
  if (digests.length === 0) return new Set();
  const { rows } = await q.query<{ digest: Digest }>(
    `SELECT b.digest FROM blobs b
       JOIN repository_blobs rb ON rb.digest = b.digest AND rb.repository_id = $1
      WHERE b.digest = ANY($2::text[]) AND b.state = 'live'
      FOR SHARE OF b`,
    [repositoryId, digests],
  );
  const present = new Set(rows.map((r) => r.digest));
  return new Set(digests.filter((d) => !present.has(d)));
}

export async function findManifest(
  q: Queryable,
  repository: RepositoryName,
  digest: Digest,
): Promise<ManifestRow | null> {
  const { rows } = await q.query<{ media_type: string; content: Uint8Array }>(
    `SELECT m.media_type, m.content FROM manifests m JOIN repositories r ON r.id = m.repository_id
      WHERE r.name = $1 AND m.digest = $2`,
    [repository, digest],
  );
  const row = rows[0];
  return row ? { digest, mediaType: row.media_type, content: asBuffer(row.content) } : null;
}

export async function findTagDigest(
  q: Queryable,
  repository: RepositoryName,
  tag: TagName,
): Promise<Digest | null> {
  const { rows } = await q.query<{ digest: Digest }>(
    `SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2`,
    [repository, tag],
  );
  return rows[0]?.digest ?? null;
}

/** Stores the manifest and what it references; a manifest already present is left as it is. */
export async function insertManifest(
  q: Queryable,
  repositoryId: number,
  digest: Digest,
  manifest: ParsedManifest,
  content: Buffer,
  artifactType: string | undefined,
): Promise<boolean> {
  const { rows } = await q.query<{ digest: string }>(
    `INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject_digest, annotations, size, content)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (repository_id, digest) DO NOTHING RETURNING digest`,
    [
      repositoryId,
      digest,
      manifest.mediaType,
      artifactType ?? null,
      manifest.subject?.digest ?? null,
      manifest.annotations ? JSON.stringify(manifest.annotations) : null,
      content.length,
      content,
    ],
  );
  if (rows.length === 0) {
    // Already there: lock it so a concurrent garbage collection cannot remove it under this push.
    await q.query('SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR SHARE', [
      repositoryId,
      digest,
    ]);
    return false;
  }
  const blobs = [...new Set(manifest.blobs.map((d) => d.digest))];
  if (blobs.length > 0) {
    await q.query(
      `INSERT INTO manifest_blobs (repository_id, manifest_digest, blob_digest)
       SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`,
      [repositoryId, digest, blobs],
    );
  }
  const children = [...new Set(manifest.manifests.map((d) => d.digest))];
  if (children.length > 0) {
    await q.query(
      `INSERT INTO manifest_children (repository_id, manifest_digest, child_digest)
       SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`,
      [repositoryId, digest, children],
    );
  }
  return true;
}

/** Points the tag at `digest`, recording the move; returns the digest it pointed at before. */
export async function moveTag(
  q: Queryable,
  repositoryId: number,
  tag: TagName,
  digest: Digest,
  actor: string | null,
): Promise<Digest | null> {
  const { rows } = await q.query<{ digest: Digest }>(
    'SELECT digest FROM tags WHERE repository_id = $1 AND name = $2 FOR UPDATE',
    [repositoryId, tag],
  );
  const previous = rows[0]?.digest ?? null;
  if (previous === digest) return previous;
  await q.query(
    `INSERT INTO tags (repository_id, name, digest) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, name) DO UPDATE SET digest = EXCLUDED.digest, updated_at = now()`,
    [repositoryId, tag, digest],
  );
  await recordTagHistory(q, repositoryId, tag, digest, previous, actor);
  return previous;
}

export async function deleteTag(
  q: Queryable,
  repositoryId: number,
  tag: TagName,
  actor: string | null,
): Promise<Digest | null> {
  const { rows } = await q.query<{ digest: Digest }>(
    'DELETE FROM tags WHERE repository_id = $1 AND name = $2 RETURNING digest',
    [repositoryId, tag],
  );
  const previous = rows[0]?.digest ?? null;
  if (previous) await recordTagHistory(q, repositoryId, tag, null, previous, actor);
  return previous;
}

/** Deletes a manifest and every tag pointing at it; returns the deleted tags, or null when absent. */
export async function deleteManifest(
  q: Queryable,
  repositoryId: number,
  digest: Digest,
  actor: string | null,
): Promise<TagName[] | null> {
  const { rows: tags } = await q.query<{ name: TagName }>(
    'DELETE FROM tags WHERE repository_id = $1 AND digest = $2 RETURNING name',
    [repositoryId, digest],
  );
  for (const { name } of tags) await recordTagHistory(q, repositoryId, name, null, digest, actor);
  const { rowCount } = await q.query('DELETE FROM manifests WHERE repository_id = $1 AND digest = $2', [
    repositoryId,
    digest,
  ]);
  return rowCount > 0 ? tags.map((t) => t.name) : null;
}

async function recordTagHistory(
  q: Queryable,
  repositoryId: number,
  tag: TagName,
  digest: Digest | null,
  previous: Digest | null,
  actor: string | null,
): Promise<void> {
  await q.query(
    'INSERT INTO tag_history (repository_id, tag, digest, previous_digest, actor) VALUES ($1, $2, $3, $4, $5)',
    [repositoryId, tag, digest, previous, actor],
  );
}

export async function listTagHistory(
  q: Queryable,
  repository: RepositoryName,
  tag: TagName,
  limit: number,
): Promise<TagHistoryEntry[]> {
  const { rows } = await q.query<{
    tag: string;
    digest: Digest | null;
    previous_digest: Digest | null;
    actor: string | null;
    occurred_at: Date;
  }>(
    `SELECT h.tag, h.digest, h.previous_digest, h.actor, h.occurred_at
       FROM tag_history h JOIN repositories r ON r.id = h.repository_id
      WHERE r.name = $1 AND h.tag = $2 ORDER BY h.id DESC LIMIT $3`,
    [repository, tag, limit],
  );
  return rows.map((r) => ({
    tag: r.tag,
    digest: r.digest,
    previousDigest: r.previous_digest,
    actor: r.actor,
    occurredAt: r.occurred_at,
  }));
}

export interface TagDetail {
  name: string;
  digest: Digest;
  updatedAt: Date;
}

/** Tags with their digests, in byte order after `last`. */
export async function listTagDetails(
  q: Queryable,
  repository: RepositoryName,
  last: string | undefined,
  limit: number,
): Promise<TagDetail[]> {
  const { rows } = await q.query<{ name: string; digest: Digest; updated_at: Date }>(
    `SELECT t.name, t.digest, t.updated_at FROM tags t JOIN repositories r ON r.id = t.repository_id
      WHERE r.name = $1 AND ($2::text IS NULL OR t.name COLLATE "C" > $2)
      ORDER BY t.name COLLATE "C" LIMIT $3`,
    [repository, last ?? null, limit],
  );
  return rows.map((r) => ({ name: r.name, digest: r.digest, updatedAt: new Date(r.updated_at) }));
}

/** Tags in byte order after `last`; `limit` null lists them all. */
export async function listTags(
  q: Queryable,
  repositoryId: number,
  last: string | undefined,
  limit: number | null,
): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>(
    `SELECT name FROM tags WHERE repository_id = $1 AND ($2::text IS NULL OR name COLLATE "C" > $2)
      ORDER BY name COLLATE "C" LIMIT $3`,
    [repositoryId, last ?? null, limit],
  );
  return rows.map((r) => r.name);
}

/** Repositories holding at least one manifest, in byte order after `last`. */
export async function listRepositories(
  q: Queryable,
  last: string | undefined,
  limit: number | null,
): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>(
    `SELECT r.name FROM repositories r
      WHERE ($1::text IS NULL OR r.name COLLATE "C" > $1)
        AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
      ORDER BY r.name COLLATE "C" LIMIT $2`,
    [last ?? null, limit],
  );
  return rows.map((r) => r.name);
}

export async function listReferrers(
  q: Queryable,
  repository: RepositoryName,
  subject: Digest,
  artifactType: string | undefined,
): Promise<ReferrerRow[]> {
  const { rows } = await q.query<{
    digest: Digest;
    media_type: string;
    artifact_type: string | null;
    size: number;
    annotations: Record<string, string> | null;
  }>(
    `SELECT m.digest, m.media_type, m.artifact_type, m.size, m.annotations
       FROM manifests m JOIN repositories r ON r.id = m.repository_id
      WHERE r.name = $1 AND m.subject_digest = $2 AND ($3::text IS NULL OR m.artifact_type = $3)
      ORDER BY m.pushed_at, m.digest`,
    [repository, subject, artifactType ?? null],
  );
  return rows.map((r) => ({
    digest: r.digest,
    mediaType: r.media_type,
    artifactType: r.artifact_type,
    size: r.size,
    annotations: r.annotations,
  }));
}

export async function insertUpload(q: Queryable, id: string, repository: RepositoryName): Promise<void> {
  await q.query('INSERT INTO uploads (id, repository) VALUES ($1, $2)', [id, repository]);
}

export async function findUpload(q: Queryable, id: string): Promise<{ repository: RepositoryName } | null> {
  const { rows } = await q.query<{ repository: RepositoryName }>(
    'SELECT repository FROM uploads WHERE id = $1',
    [id],
  );
  return rows[0] ?? null;
}

export async function touchUpload(q: Queryable, id: string): Promise<void> {
  await q.query('UPDATE uploads SET updated_at = now() WHERE id = $1', [id]);
}

export async function deleteUpload(q: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await q.query('DELETE FROM uploads WHERE id = $1', [id]);
  return rowCount > 0;
}
