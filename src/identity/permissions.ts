import type { Queryable } from '../db/database.ts';
import type { Principal } from './accounts.ts';
import { namespaceOf } from './names.ts';
import type { TeamRole } from './teams.ts';

export type RepositoryRole = 'read' | 'write' | 'admin';
export const repositoryRoles: readonly RepositoryRole[] = ['read', 'write', 'admin'];
export type Visibility = 'private' | 'public';
export type RegistryAction = 'pull' | 'push' | 'delete';

const rank: Record<RepositoryRole, number> = { read: 1, write: 2, admin: 3 };

export function strongerRole(a: RepositoryRole | null, b: RepositoryRole | null): RepositoryRole | null {
  if (a === null) return b;
  if (b === null) return a;
  return rank[a] >= rank[b] ? a : b;
}

export function roleAllows(role: RepositoryRole | null, needed: RepositoryRole): boolean {
  return role !== null && rank[role] >= rank[needed];
}

/** Registry actions a role allows: deleting tags and manifests is writing, as in Quay. */
export function actionsOf(role: RepositoryRole | null): RegistryAction[] {
  if (role === null) return [];
  return role === 'read' ? ['pull'] : ['pull', 'push', 'delete'];
}

/** Everything the database says about one principal and one repository name, read in one query. */
export interface AccessFacts {
  repositoryId: number | null;
  visibility: Visibility | null;
  namespace: { id: number; kind: 'user' | 'organization' } | null;
  teamRoles: TeamRole[];
  granted: RepositoryRole[];
}

export async function accessFacts(
  q: Queryable,
  principal: Principal,
  repository: string,
): Promise<AccessFacts> {
  const accountId = principal.kind === 'account' ? principal.account.id : null;
  const { rows } = await q.query<{
    repository_id: number | null;
    visibility: Visibility | null;
    namespace_id: number | null;
    namespace_kind: 'user' | 'organization' | null;
    team_roles: TeamRole[] | null;
    granted: RepositoryRole[] | null;
  }>(
    `SELECT r.id AS repository_id, r.visibility, ns.id AS namespace_id, ns.kind AS namespace_kind,
       (SELECT array_agg(DISTINCT t.role) FROM teams t JOIN team_members m ON m.team_id = t.id
         WHERE t.organization_id = ns.id AND m.account_id = $3) AS team_roles,
       (SELECT array_agg(p.role) FROM repository_permissions p
         WHERE p.repository_id = r.id AND (p.account_id = $3
           OR p.team_id IN (SELECT team_id FROM team_members WHERE account_id = $3))) AS granted
     FROM (SELECT 1) AS one
     LEFT JOIN repositories r ON r.name = $1
     LEFT JOIN accounts ns ON ns.name = $2 AND ns.kind IN ('user', 'organization')`,
    [repository, namespaceOf(repository), accountId],
  );
  const row = rows[0]!;
  return {
    repositoryId: row.repository_id === null ? null : Number(row.repository_id),
    visibility: row.visibility,
    namespace: row.namespace_id === null ? null : { id: Number(row.namespace_id), kind: row.namespace_kind! },
    teamRoles: row.team_roles ?? [],
    granted: row.granted ?? [],
  };
}

export interface ResolvedAccess {
  /** The principal's role on the repository; null for none. Only meaningful when it exists. */
  role: RepositoryRole | null;
  /** Whether pushing may create the repository (it does not exist and the namespace allows it). */
  canCreate: boolean;
}

/**
 * The permission model, as Quay users know it: superusers and namespace owners (a user in their own
 * namespace, an organization's admin teams) administer every repository there; creator teams create
 * repositories; everyone else has what was granted to them or their teams; public repositories are
 * readable by anyone. Robots have only what was granted to them or their teams. Builds hold no role
 * anywhere: their token's pull and push on one repository is all they have (`AccessPolicy`).
 */
export function resolveAccess(principal: Principal, facts: AccessFacts): ResolvedAccess {
  if (principal.kind === 'build') return { role: null, canCreate: false };
  const exists = facts.repositoryId !== null;
  let role: RepositoryRole | null = exists && facts.visibility === 'public' ? 'read' : null;
  let namespaceRole: RepositoryRole | null = null;
  let creates = false;
  if (principal.kind === 'account' && facts.namespace) {
    const account = principal.account;
    if (account.superuser) namespaceRole = 'admin';
    if (facts.namespace.kind === 'user' && facts.namespace.id === account.id) namespaceRole = 'admin';
    if (facts.teamRoles.includes('admin')) namespaceRole = 'admin';
    creates = namespaceRole === 'admin' || facts.teamRoles.includes('creator');
  }
  if (exists) {
    role = strongerRole(role, namespaceRole);
    for (const granted of facts.granted) role = strongerRole(role, granted);
  }
  return { role, canCreate: !exists && creates };
}

// ── repositories and their permissions ────────────────────────────────────────────────────────

export interface RepositoryInfo {
  id: number;
  name: string;
  namespace: string;
  visibility: Visibility;
  createdAt: Date;
}

interface RepositoryRow {
  id: number;
  name: string;
  visibility: Visibility;
  created_at: Date | string;
}

const toRepositoryInfo = (row: RepositoryRow): RepositoryInfo => ({
  id: Number(row.id),
  name: row.name,
  namespace: namespaceOf(row.name) ?? '',
  visibility: row.visibility,
  createdAt: new Date(row.created_at),
});

export async function findRepository(q: Queryable, name: string): Promise<RepositoryInfo | null> {
  const { rows } = await q.query<RepositoryRow>(
    'SELECT id, name, visibility, created_at FROM repositories WHERE name = $1',
    [name],
  );
  return rows[0] ? toRepositoryInfo(rows[0]) : null;
}

/** Creates the repository row (the registry fills it on push); false when it existed already. */
export async function insertRepository(
  q: Queryable,
  name: string,
  visibility: Visibility,
): Promise<{ id: number; created: boolean }> {
  const { rows } = await q.query<{ id: number }>(
    'INSERT INTO repositories (name, visibility) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id',
    [name, visibility],
  );
  if (rows[0]) return { id: Number(rows[0].id), created: true };
  const existing = await findRepository(q, name);
  return { id: existing!.id, created: false };
}

export async function setVisibility(
  q: Queryable,
  repositoryId: number,
  visibility: Visibility,
): Promise<void> {
  await q.query('UPDATE repositories SET visibility = $2 WHERE id = $1', [repositoryId, visibility]);
}

/**
 * Repositories the principal can read, in name order, after `last`. Mirrors `resolveAccess` for
 * reading, in SQL, so listings page correctly.
 */
export async function listReadableRepositories(
  q: Queryable,
  principal: Principal,
  options: { namespace?: string; last?: string; limit: number; publicOnly?: boolean; among?: string[] },
): Promise<RepositoryInfo[]> {
  // Not even public ones: a build sees its own repository only, which the registry answers itself.
  if (principal.kind === 'build') return [];
  const account = principal.kind === 'account' ? principal.account : null;
  const { rows } = await q.query<RepositoryRow>(
    `SELECT r.id, r.name, r.visibility, r.created_at FROM repositories r
      WHERE ($2::text IS NULL OR r.name COLLATE "C" > $2)
        AND ($3::text IS NULL OR r.name LIKE $3 || '/%')
        AND ($8::text[] IS NULL OR r.name = ANY($8))
        AND (r.visibility = 'public' OR (NOT $6 AND (
          $5
          OR split_part(r.name, '/', 1) = $4
          OR EXISTS (SELECT 1 FROM repository_permissions p WHERE p.repository_id = r.id AND (p.account_id = $1
               OR p.team_id IN (SELECT team_id FROM team_members WHERE account_id = $1)))
          OR EXISTS (SELECT 1 FROM teams t JOIN team_members m ON m.team_id = t.id
               JOIN accounts o ON o.id = t.organization_id
              WHERE m.account_id = $1 AND t.role = 'admin' AND o.name = split_part(r.name, '/', 1)))))
      ORDER BY r.name COLLATE "C" LIMIT $7`,
    [
      account?.id ?? null,
      options.last ?? null,
      options.namespace ?? null,
      account?.kind === 'user' ? account.name : null,
      account?.superuser ?? false,
      options.publicOnly ?? false,
      options.limit,
      options.among ?? null,
    ],
  );
  return rows.map(toRepositoryInfo);
}

export interface PermissionEntry {
  kind: 'account' | 'team';
  /** A user or robot name, or a team name of the repository's organization. */
  name: string;
  accountKind?: 'user' | 'robot';
  role: RepositoryRole;
}

export async function listPermissions(q: Queryable, repositoryId: number): Promise<PermissionEntry[]> {
  const { rows } = await q.query<{
    name: string;
    account_kind: 'user' | 'robot' | null;
    role: RepositoryRole;
  }>(
    `SELECT COALESCE(a.name, t.name) AS name, a.kind AS account_kind, p.role
       FROM repository_permissions p
       LEFT JOIN accounts a ON a.id = p.account_id
       LEFT JOIN teams t ON t.id = p.team_id
      WHERE p.repository_id = $1 ORDER BY (p.team_id IS NULL), name`,
    [repositoryId],
  );
  return rows.map((row) =>
    row.account_kind
      ? { kind: 'account', name: row.name, accountKind: row.account_kind, role: row.role }
      : { kind: 'team', name: row.name, role: row.role },
  );
}

export type Grantee = { accountId: number } | { teamId: number };

export async function grant(q: Queryable, repositoryId: number, grantee: Grantee, role: RepositoryRole) {
  if ('accountId' in grantee) {
    await q.query(
      `INSERT INTO repository_permissions (repository_id, account_id, role) VALUES ($1, $2, $3)
       ON CONFLICT (repository_id, account_id) WHERE account_id IS NOT NULL DO UPDATE SET role = EXCLUDED.role`,
      [repositoryId, grantee.accountId, role],
    );
  } else {
    await q.query(
      `INSERT INTO repository_permissions (repository_id, team_id, role) VALUES ($1, $2, $3)
       ON CONFLICT (repository_id, team_id) WHERE team_id IS NOT NULL DO UPDATE SET role = EXCLUDED.role`,
      [repositoryId, grantee.teamId, role],
    );
  }
}

export async function revoke(q: Queryable, repositoryId: number, grantee: Grantee): Promise<boolean> {
  const { rowCount } =
    'accountId' in grantee
      ? await q.query('DELETE FROM repository_permissions WHERE repository_id = $1 AND account_id = $2', [
          repositoryId,
          grantee.accountId,
        ])
      : await q.query('DELETE FROM repository_permissions WHERE repository_id = $1 AND team_id = $2', [
          repositoryId,
          grantee.teamId,
        ]);
  return rowCount > 0;
}

/** Whether the account is on a team of the organization, or is one of its robots. */
export async function isOrganizationMember(
  q: Queryable,
  accountId: number,
  organization: string,
): Promise<boolean> {
  const { rows } = await q.query(
    `SELECT 1 FROM accounts o
      WHERE o.name = $2 AND o.kind = 'organization'
        AND (EXISTS (SELECT 1 FROM teams t JOIN team_members m ON m.team_id = t.id
                      WHERE t.organization_id = o.id AND m.account_id = $1)
             OR EXISTS (SELECT 1 FROM accounts r WHERE r.id = $1 AND r.owner_id = o.id))`,
    [accountId, organization],
  );
  return rows.length > 0;
}
