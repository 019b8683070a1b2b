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

/** A pull seen by this process `ageSeconds` ago: of a tag, or of a manifest by digest. */
export interface Pull {
  repository: RepositoryName;
  /** A tag, or a manifest digest. */
  reference: string;
  ageSeconds: number;
}

/**
 * Moves the last pull of the tags forward to when they were pulled (never back), by the database's
 * clock less each pull's age, so replicas with skewed clocks agree.
 */
export async function recordTagPulls(q: Queryable, pulls: readonly Pull[]): Promise<void> {
  if (pulls.length === 0) return;
  await q.query(
    `UPDATE proxy_tags p SET last_pulled_at = v.pulled_at
       FROM (SELECT r.id, v.tag, now() - make_interval(secs => v.age) AS pulled_at
               FROM unnest($1::text[], $2::text[], $3::float8[]) AS v (repository, tag, age)
               JOIN repositories r ON r.name = v.repository) v
      WHERE p.repository_id = v.id AND p.tag = v.tag AND p.last_pulled_at < v.pulled_at`,
    columns(pulls),
  );
}

/**
 * Manifests pulled by digest count as pulls of the tags that serve them: those pointing at the
 * manifest, and those pointing at an index that lists it (clients pull an index's children by digest).
 */
export async function recordDigestPulls(q: Queryable, pulls: readonly Pull[]): Promise<void> {
  if (pulls.length === 0) return;
  await q.query(
    `UPDATE proxy_tags p SET last_pulled_at = u.pulled_at
       FROM (SELECT t.repository_id, t.tag, max(now() - make_interval(secs => v.age)) AS pulled_at
               FROM unnest($1::text[], $2::text[], $3::float8[]) AS v (repository, digest, age)
               JOIN repositories r ON r.name = v.repository
               JOIN proxy_tags t ON t.repository_id = r.id
              WHERE t.digest = v.digest
                 OR EXISTS (SELECT 1 FROM manifest_children mc
                             WHERE mc.repository_id = r.id AND mc.manifest_digest = t.digest
                               AND mc.child_digest = v.digest)
              GROUP BY t.repository_id, t.tag) u
      WHERE p.repository_id = u.repository_id AND p.tag = u.tag AND p.last_pulled_at < u.pulled_at`,
    columns(pulls),
  );
}

function columns(pulls: readonly Pull[]): [string[], string[], number[]] {
  return [pulls.map((p) => p.repository), pulls.map((p) => p.reference), pulls.map((p) => p.ageSeconds)];
}
