import type { Queryable } from '../../db/database.ts';
import type { Digest } from '../../registry/digest.ts';
import type { RepositoryName, TagName } from '../../registry/names.ts';

/** A tag of a proxied repository as last checked upstream. */
export interface ProxyTag {
  digest: Digest;
  /** Seconds since it was fetched or revalidated, by the database's clock (shared by replicas). */
  ageSeconds: number;
}

export async function findProxyTag(
  q: Queryable,
  repository: RepositoryName,
  tag: TagName,
): Promise<ProxyTag | null> {
  const { rows } = await q.query<{ digest: Digest; age_seconds: number | string }>(
    `SELECT p.digest, EXTRACT(EPOCH FROM now() - p.checked_at)::float8 AS age_seconds
       FROM proxy_tags p JOIN repositories r ON r.id = p.repository_id
      WHERE r.name = $1 AND p.tag = $2`,
    [repository, tag],
  );
  const row = rows[0];
  return row ? { digest: row.digest, ageSeconds: Number(row.age_seconds) } : null;
}

/** The tag was fetched (or found moved) upstream and now points at `digest`. */
export async function recordFetchedTag(
  q: Queryable,
  repositoryId: number,
  tag: TagName,
  digest: Digest,
): Promise<void> {
  await q.query(
    `INSERT INTO proxy_tags (repository_id, tag, digest) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, tag)
     DO UPDATE SET digest = EXCLUDED.digest, checked_at = now(), last_pulled_at = now()`,
    [repositoryId, tag, digest],
  );
}

/** Upstream still has the tag at the cached digest: trusted again for the freshness period. */
export async function recordRevalidatedTag(
  q: Queryable,
  repository: RepositoryName,
  tag: TagName,
): Promise<void> {
  await q.query(
    `UPDATE proxy_tags p SET checked_at = now(), last_pulled_at = now()
       FROM repositories r WHERE r.id = p.repository_id AND r.name = $1 AND p.tag = $2`,
    [repository, tag],
  );
}
