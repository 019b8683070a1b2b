import type { Queryable } from '../db/database.ts';
import { notFound } from '../errors.ts';

export type TeamRole = 'member' | 'creator' | 'admin';
export const teamRoles: readonly TeamRole[] = ['member', 'creator', 'admin'];

export interface Team {
  id: number;
  organization: string;
  name: string;
  role: TeamRole;
  description: string;
}

interface TeamRow {
  id: number;
  organization: string;
  name: string;
  role: TeamRole;
  description: string;
}

const teamSelect = `SELECT t.id, o.name AS organization, t.name, t.role, t.description
  FROM teams t JOIN accounts o ON o.id = t.organization_id`;

const toTeam = (row: TeamRow): Team => ({ ...row, id: Number(row.id) });

export async function upsertTeam(
  q: Queryable,
  organizationId: number,
  name: string,
  role: TeamRole,
  description: string | undefined,
): Promise<Team> {
  await q.query(
    `INSERT INTO teams (organization_id, name, role, description) VALUES ($1, $2, $3, COALESCE($4, ''))
     ON CONFLICT (organization_id, name) DO UPDATE SET role = EXCLUDED.role,
       description = COALESCE($4, teams.description)`,
    [organizationId, name, role, description ?? null],
  );
  return requireTeam(q, organizationId, name);
}

export async function findTeam(q: Queryable, organizationId: number, name: string): Promise<Team | null> {
  const { rows } = await q.query<TeamRow>(`${teamSelect} WHERE t.organization_id = $1 AND t.name = $2`, [
    organizationId,
    name,
  ]);
  return rows[0] ? toTeam(rows[0]) : null;
}

export async function requireTeam(q: Queryable, organizationId: number, name: string): Promise<Team> {
  const team = await findTeam(q, organizationId, name);
  if (!team) throw notFound(`team ${name} does not exist in this organization`);
  return team;
}

export async function listTeams(
  q: Queryable,
  organizationId: number,
): Promise<Array<Team & { members: number }>> {
  const { rows } = await q.query<TeamRow & { members: number }>(
    `SELECT t.id, o.name AS organization, t.name, t.role, t.description,
            (SELECT count(*)::int FROM team_members m WHERE m.team_id = t.id) AS members
       FROM teams t JOIN accounts o ON o.id = t.organization_id
      WHERE t.organization_id = $1 ORDER BY t.name`,
    [organizationId],
  );
  return rows.map((row) => ({ ...toTeam(row), members: Number(row.members) }));
}

export async function deleteTeam(q: Queryable, teamId: number): Promise<void> {
  await q.query('DELETE FROM teams WHERE id = $1', [teamId]);
}

export async function addTeamMember(q: Queryable, teamId: number, accountId: number): Promise<void> {
  await q.query('INSERT INTO team_members (team_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
    teamId,
    accountId,
  ]);
}

export async function removeTeamMember(q: Queryable, teamId: number, accountId: number): Promise<boolean> {
  const { rowCount } = await q.query('DELETE FROM team_members WHERE team_id = $1 AND account_id = $2', [
    teamId,
    accountId,
  ]);
  return rowCount > 0;
}

export async function listTeamMembers(
  q: Queryable,
  teamId: number,
): Promise<Array<{ name: string; kind: 'user' | 'robot' }>> {
  const { rows } = await q.query<{ name: string; kind: 'user' | 'robot' }>(
    `SELECT a.name, a.kind FROM team_members m JOIN accounts a ON a.id = m.account_id
      WHERE m.team_id = $1 ORDER BY a.name`,
    [teamId],
  );
  return rows;
}

/** How many members the organization's admin teams have: the last admin cannot leave. */
export async function countOrganizationAdmins(q: Queryable, organizationId: number): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(DISTINCT m.account_id)::int AS n FROM teams t JOIN team_members m ON m.team_id = t.id
      JOIN accounts a ON a.id = m.account_id
      WHERE t.organization_id = $1 AND t.role = 'admin' AND a.kind = 'user'`,
    [organizationId],
  );
  return Number(rows[0]!.n);
}
