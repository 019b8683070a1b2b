import type { Queryable } from '../db/database.ts';
import { toAccount, type Account } from './accounts.ts';
import type { NewToken } from './secrets.ts';

export interface StoredBuildToken {
  id: number;
  buildId: string;
  repository: string;
  verifierHash: Buffer;
  expiresAt: Date;
  /** The robot whose read access the build may also pull with; null for none (or once it was deleted). */
  pullRobot: Account | null;
}

interface BuildTokenRow {
  id: number;
  build_id: string;
  repository: string;
  verifier_hash: Uint8Array;
  expires_at: Date | string;
  robot_id: number | null;
  robot_name: string | null;
  robot_email: string | null;
  robot_superuser: boolean | null;
  robot_owner_id: number | null;
  robot_description: string | null;
  robot_created_at: Date | string | null;
}

/**
 * Stores the build's token, replacing the one it had (whose secret then stops working); whether one
 * was replaced.
 */
export async function upsertBuildToken(
  q: Queryable,
  token: {
    buildId: string;
    repository: string;
    expiresAt: Date;
    issuedBy: number | null;
    pullRobotId: number | null;
  },
  secret: NewToken,
): Promise<{ replaced: boolean }> {
  const { rows } = await q.query<{ replaced: boolean }>(
    `INSERT INTO build_tokens (build_id, repository, selector, verifier_hash, issued_by, expires_at, pull_robot_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (build_id) DO UPDATE SET repository = EXCLUDED.repository, selector = EXCLUDED.selector,
       verifier_hash = EXCLUDED.verifier_hash, issued_by = EXCLUDED.issued_by,
       created_at = now(), expires_at = EXCLUDED.expires_at, last_used_at = NULL,
       pull_robot_id = EXCLUDED.pull_robot_id
     RETURNING (xmax <> 0) AS replaced`, // xmax: set on a row the conflict updated, 0 on one inserted
    [
      token.buildId,
      token.repository,
      secret.selector,
      secret.verifierHash,
      token.issuedBy,
      token.expiresAt,
      token.pullRobotId,
    ],
  );
  return { replaced: rows[0]!.replaced };
}

export async function findBuildToken(q: Queryable, selector: string): Promise<StoredBuildToken | null> {
  // The pull robot comes with the token: build tokens are read on every request, never remembered, so
  // a robot deleted (or its token's grant gone) applies to the very next pull.
  const { rows } = await q.query<BuildTokenRow>(
    `SELECT t.id, t.build_id, t.repository, t.verifier_hash, t.expires_at, a.id AS robot_id,
       a.name AS robot_name, a.email AS robot_email, a.superuser AS robot_superuser,
       a.owner_id AS robot_owner_id, a.description AS robot_description, a.created_at AS robot_created_at
     FROM build_tokens t LEFT JOIN accounts a ON a.id = t.pull_robot_id AND a.kind = 'robot'
     WHERE t.selector = $1`,
    [selector],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    id: Number(row.id),
    buildId: row.build_id,
    repository: row.repository,
    verifierHash: Buffer.from(row.verifier_hash),
    expiresAt: new Date(row.expires_at),
    pullRobot: pullRobotOf(row),
  };
}

function pullRobotOf(row: BuildTokenRow): Account | null {
  if (row.robot_id === null || row.robot_name === null) return null;
  return toAccount({
    id: row.robot_id,
    name: row.robot_name,
    kind: 'robot',
    email: row.robot_email,
    superuser: row.robot_superuser ?? false,
    owner_id: row.robot_owner_id,
    description: row.robot_description ?? '',
    created_at: row.robot_created_at!,
  });
}

/** Deletes the build's token; its repository, or null when the build had none. */
export async function deleteBuildToken(q: Queryable, buildId: string): Promise<string | null> {
  const { rows } = await q.query<{ repository: string }>(
    'DELETE FROM build_tokens WHERE build_id = $1 RETURNING repository',
    [buildId],
  );
  return rows[0]?.repository ?? null;
}

export async function deleteExpiredBuildTokens(q: Queryable, now: Date): Promise<number> {
  const { rowCount } = await q.query('DELETE FROM build_tokens WHERE expires_at <= $1', [now]);
  return rowCount;
}

export async function touchBuildToken(q: Queryable, id: number): Promise<void> {
  await q.query('UPDATE build_tokens SET last_used_at = now() WHERE id = $1', [id]);
}

/** Whether the build's token still stands: neither revoked nor expired. */
export async function buildTokenIsLive(q: Queryable, buildId: string, now: Date): Promise<boolean> {
  const { rows } = await q.query('SELECT 1 FROM build_tokens WHERE build_id = $1 AND expires_at > $2', [
    buildId,
    now,
  ]);
  return rows.length > 0;
}
