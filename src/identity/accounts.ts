import type { Queryable } from '../db/database.ts';
import { conflict, notFound } from '../errors.ts';
import type { NewToken } from './secrets.ts';

export type AccountKind = 'user' | 'organization' | 'robot';

export interface Account {
  id: number;
  name: string;
  kind: AccountKind;
  email: string | null;
  superuser: boolean;
  /** The namespace a robot belongs to; null for users and organizations. */
  ownerId: number | null;
  description: string;
  createdAt: Date;
}

/**
 * Who a request acts as, once its credentials were checked. A build is no account: it holds a build
 * token that pulls and pushes one repository until it expires, and nothing else.
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'account'; account: Account; via: CredentialKind }
  | { kind: 'build'; build: BuildIdentity };

export type CredentialKind = 'password' | 'personal-token' | 'robot-token' | 'session' | 'registry-token';

/** What a build token says about its bearer. */
export interface BuildIdentity {
  buildId: string;
  /** `build@<buildId>`: the username it logs in with, and the actor of audit entries and events. */
  name: string;
  repository: string;
  expiresAt: Date;
  /** The robot whose read access the build may also pull with (its trigger's pull robot), or null. */
  pullRobot: Account | null;
}

export const anonymous: Principal = { kind: 'anonymous' };

/** The name audit entries and events record; null for anonymous callers. */
export function principalName(principal: Principal): string | null {
  if (principal.kind === 'account') return principal.account.name;
  return principal.kind === 'build' ? principal.build.name : null;
}

/** `user`, `organization`, `robot`, `build` or `anonymous`, as the audit log's actor kind. */
export function principalKind(principal: Principal): AccountKind | 'build' | 'anonymous' {
  return principal.kind === 'account' ? principal.account.kind : principal.kind;
}

export interface AccountRow {
  id: number;
  name: string;
  kind: AccountKind;
  email: string | null;
  superuser: boolean;
  owner_id: number | null;
  description: string;
  created_at: Date | string;
}

const accountColumns = 'id, name, kind, email, superuser, owner_id, description, created_at';

export function toAccount(row: AccountRow): Account {
  return {
    id: Number(row.id),
    name: row.name,
    kind: row.kind,
    email: row.email,
    superuser: row.superuser,
    ownerId: row.owner_id === null ? null : Number(row.owner_id),
    description: row.description,
    createdAt: new Date(row.created_at),
  };
}

export async function findAccount(q: Queryable, name: string): Promise<Account | null> {
  const { rows } = await q.query<AccountRow>(`SELECT ${accountColumns} FROM accounts WHERE name = $1`, [
    name,
  ]);
  return rows[0] ? toAccount(rows[0]) : null;
}

export async function findAccountById(q: Queryable, id: number): Promise<Account | null> {
  const { rows } = await q.query<AccountRow>(`SELECT ${accountColumns} FROM accounts WHERE id = $1`, [id]);
  return rows[0] ? toAccount(rows[0]) : null;
}

export async function requireAccount(q: Queryable, name: string, kind?: AccountKind): Promise<Account> {
  const account = await findAccount(q, name);
  if (!account || (kind && account.kind !== kind)) {
    throw notFound(
      `${kind === 'organization' ? 'organization' : kind === 'robot' ? 'robot account' : kind === 'user' ? 'user' : 'account'} ${name} does not exist`,
    );
  }
  return account;
}

export async function passwordHashOf(q: Queryable, accountId: number): Promise<string | null> {
  const { rows } = await q.query<{ password_hash: string | null }>(
    'SELECT password_hash FROM accounts WHERE id = $1',
    [accountId],
  );
  return rows[0]?.password_hash ?? null;
}

export interface NewAccount {
  name: string;
  kind: AccountKind;
  email?: string | null;
  passwordHash?: string | null;
  superuser?: boolean;
  ownerId?: number | null;
  description?: string;
}

export async function insertAccount(q: Queryable, account: NewAccount): Promise<Account> {
  const { rows } = await q.query<AccountRow>(
    `INSERT INTO accounts (name, kind, email, password_hash, superuser, owner_id, description)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (name) DO NOTHING RETURNING ${accountColumns}`,
    [
      account.name,
      account.kind,
      account.email ?? null,
      account.passwordHash ?? null,
      account.superuser ?? false,
      account.ownerId ?? null,
      account.description ?? '',
    ],
  );
  if (!rows[0]) throw conflict(`the name ${account.name} is taken by another user, organization or robot`);
  return toAccount(rows[0]);
}

export async function listAccounts(q: Queryable, kind: AccountKind, ownerId?: number): Promise<Account[]> {
  const { rows } = await q.query<AccountRow>(
    `SELECT ${accountColumns} FROM accounts WHERE kind = $1 AND ($2::bigint IS NULL OR owner_id = $2) ORDER BY name`,
    [kind, ownerId ?? null],
  );
  return rows.map(toAccount);
}

export async function countUsers(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM accounts WHERE kind = 'user'",
  );
  return Number(rows[0]!.n);
}

export async function updateAccount(
  q: Queryable,
  id: number,
  changes: { passwordHash?: string; superuser?: boolean; email?: string | null; description?: string },
): Promise<void> {
  await q.query(
    `UPDATE accounts SET
       password_hash = COALESCE($2, password_hash),
       superuser = COALESCE($3, superuser),
       email = CASE WHEN $4::boolean THEN $5 ELSE email END,
       description = COALESCE($6, description)
     WHERE id = $1`,
    [
      id,
      changes.passwordHash ?? null,
      changes.superuser ?? null,
      changes.email !== undefined,
      changes.email ?? null,
      changes.description ?? null,
    ],
  );
}

export async function deleteAccount(q: Queryable, id: number): Promise<void> {
  await q.query('DELETE FROM accounts WHERE id = $1', [id]);
}

// ── tokens ─────────────────────────────────────────────────────────────────────────────────────

/** Personal tokens for the CLI and API, robot tokens, and browser sessions of the REST API. */
export type TokenKind = 'personal' | 'robot' | 'session';

export interface TokenInfo {
  id: number;
  name: string;
  kind: TokenKind;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

interface TokenRow {
  id: number;
  name: string;
  kind: TokenKind;
  created_at: Date | string;
  expires_at: Date | string | null;
  last_used_at: Date | string | null;
}

function toTokenInfo(row: TokenRow): TokenInfo {
  return {
    id: Number(row.id),
    name: row.name,
    kind: row.kind,
    createdAt: new Date(row.created_at),
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at),
  };
}

export async function insertToken(
  q: Queryable,
  accountId: number,
  kind: TokenKind,
  name: string,
  secret: NewToken,
  expiresAt: Date | null,
): Promise<TokenInfo> {
  const { rows } = await q.query<TokenRow>(
    `INSERT INTO access_tokens (selector, verifier_hash, account_id, kind, name, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, name, kind, created_at, expires_at, last_used_at`,
    [secret.selector, secret.verifierHash, accountId, kind, name, expiresAt],
  );
  return toTokenInfo(rows[0]!);
}

export async function listTokens(q: Queryable, accountId: number): Promise<TokenInfo[]> {
  const { rows } = await q.query<TokenRow>(
    'SELECT id, name, kind, created_at, expires_at, last_used_at FROM access_tokens WHERE account_id = $1 ORDER BY id',
    [accountId],
  );
  return rows.map(toTokenInfo);
}

export async function deleteToken(q: Queryable, accountId: number, tokenId: number): Promise<boolean> {
  const { rowCount } = await q.query('DELETE FROM access_tokens WHERE account_id = $1 AND id = $2', [
    accountId,
    tokenId,
  ]);
  return rowCount > 0;
}

export async function deleteTokenBySelector(
  q: Queryable,
  accountId: number,
  selector: string,
): Promise<boolean> {
  const { rowCount } = await q.query('DELETE FROM access_tokens WHERE account_id = $1 AND selector = $2', [
    accountId,
    selector,
  ]);
  return rowCount > 0;
}

export async function deleteTokensOf(q: Queryable, accountId: number): Promise<void> {
  await q.query('DELETE FROM access_tokens WHERE account_id = $1', [accountId]);
}

export interface StoredToken {
  id: number;
  accountId: number;
  kind: TokenKind;
  verifierHash: Buffer;
  expiresAt: Date | null;
}

export async function findToken(q: Queryable, selector: string): Promise<StoredToken | null> {
  const { rows } = await q.query<{
    id: number;
    account_id: number;
    kind: TokenKind;
    verifier_hash: Uint8Array;
    expires_at: Date | string | null;
  }>('SELECT id, account_id, kind, verifier_hash, expires_at FROM access_tokens WHERE selector = $1', [
    selector,
  ]);
  const row = rows[0];
  if (!row) return null;
  return {
    id: Number(row.id),
    accountId: Number(row.account_id),
    kind: row.kind,
    verifierHash: Buffer.from(row.verifier_hash),
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
  };
}

export async function touchToken(q: Queryable, tokenId: number): Promise<void> {
  await q.query('UPDATE access_tokens SET last_used_at = now() WHERE id = $1', [tokenId]);
}
