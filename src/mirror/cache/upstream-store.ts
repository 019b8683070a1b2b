import type { Database, Queryable } from '../../db/database.ts';
import type { SealedBox } from '../../identity/sealed-box.ts';
import type { PullPolicy, UpstreamSettings } from './upstreams.ts';

/** An upstream as stored, with when and by whom it was made. */
export interface StoredUpstream {
  settings: UpstreamSettings;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * A change to an upstream; `password: null` removes the credentials (with the username), and
 * `storageBudget: null` the budget.
 */
export type UpstreamChanges = Partial<
  Omit<UpstreamSettings, 'name' | 'password' | 'username' | 'storageBudget'>
> & {
  username?: string | null;
  password?: string | null;
  storageBudget?: number | null;
};

interface UpstreamRow {
  name: string;
  url: string;
  hosts: string[];
  username: string | null;
  password_sealed: string | null;
  tls_verify: boolean;
  freshness_seconds: number;
  stale_if_error: boolean;
  stale_if_deleted: boolean;
  negative_ttl_seconds: number;
  max_connections: number;
  timeout_seconds: number;
  breaker_failures: number;
  breaker_cooldown_seconds: number;
  pull: string;
  /** bigint: a string from node-postgres. */
  storage_budget_bytes: string | number | null;
  pinned: string[];
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * The upstreams managed through the API, in the database all replicas share, with their passwords
 * sealed. Every change bumps a revision, so replicas notice it (`revision()`) and reload.
 */
export class UpstreamStore {
  readonly #db: Database;
  readonly #box: SealedBox;

  constructor(db: Database, box: SealedBox) {
    this.#db = db;
    this.#box = box;
  }

  async revision(): Promise<number> {
    const { rows } = await this.#db.query<{ revision: string }>(
      'SELECT revision FROM proxy_upstreams_revision',
    );
    return Number(rows[0]?.revision ?? 0);
  }

  async list(): Promise<StoredUpstream[]> {
    const { rows } = await this.#db.query<UpstreamRow>('SELECT * FROM proxy_upstreams ORDER BY name');
    return rows.map((row) => this.#fromRow(row));
  }

  async get(name: string): Promise<StoredUpstream | null> {
    const { rows } = await this.#db.query<UpstreamRow>('SELECT * FROM proxy_upstreams WHERE name = $1', [
      name,
    ]);
    return rows[0] ? this.#fromRow(rows[0]) : null;
  }

  /** Stores a new upstream; false when one of that name exists. */
  async create(settings: UpstreamSettings, createdBy: string | null): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const { rowCount } = await tx.query(
        `INSERT INTO proxy_upstreams (name, url, hosts, username, password_sealed, tls_verify,
           freshness_seconds, stale_if_error, negative_ttl_seconds, max_connections, timeout_seconds,
           breaker_failures, breaker_cooldown_seconds, pull, stale_if_deleted, storage_budget_bytes,
           pinned, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (name) DO NOTHING`,
        [...this.#columns(settings), createdBy],
      );
      if (rowCount === 0) return false;
      await bumpRevision(tx);
      return true;
    });
  }

  /** Applies the changes; the upstream as it now is, or null when there is none of that name. */
  async update(name: string, changes: UpstreamChanges): Promise<StoredUpstream | null> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<UpstreamRow>(
        'SELECT * FROM proxy_upstreams WHERE name = $1 FOR UPDATE',
        [name],
      );
      if (!rows[0]) return null;
      const current = this.#fromRow(rows[0]).settings;
      const { username, password, storageBudget, ...rest } = changes;
      const next: UpstreamSettings = { ...current, ...rest };
      if (storageBudget === null) delete next.storageBudget;
      else if (storageBudget !== undefined) next.storageBudget = storageBudget;
      if (password === null || username === null) {
        delete next.username;
        delete next.password;
      } else {
        if (username !== undefined) next.username = username;
        if (password !== undefined) next.password = password;
      }
      const columns = this.#columns(next);
      await tx.query(
        `UPDATE proxy_upstreams SET url = $2, hosts = $3, username = $4, password_sealed = $5,
           tls_verify = $6, freshness_seconds = $7, stale_if_error = $8, negative_ttl_seconds = $9,
           max_connections = $10, timeout_seconds = $11, breaker_failures = $12,
           breaker_cooldown_seconds = $13, pull = $14, stale_if_deleted = $15,
           storage_budget_bytes = $16, pinned = $17, updated_at = now()
         WHERE name = $1`,
        columns,
      );
      await bumpRevision(tx);
      const { rows: updated } = await tx.query<UpstreamRow>('SELECT * FROM proxy_upstreams WHERE name = $1', [
        name,
      ]);
      return this.#fromRow(updated[0]!);
    });
  }

  async delete(name: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const { rowCount } = await tx.query('DELETE FROM proxy_upstreams WHERE name = $1', [name]);
      if (rowCount === 0) return false;
      await bumpRevision(tx);
      return true;
    });
  }

  #columns(s: UpstreamSettings): unknown[] {
    return [
      s.name,
      s.url,
      [...s.hosts],
      s.username ?? null,
      s.password === undefined ? null : this.#box.seal(s.password),
      s.tlsVerify,
      s.freshness,
      s.staleIfError,
      s.negativeTtl,
      s.maxConnections,
      s.timeout,
      s.circuitBreaker.failures,
      s.circuitBreaker.cooldown,
      s.pull,
      s.staleIfDeleted,
      s.storageBudget ?? null,
      [...(s.pinned ?? [])],
    ];
  }

  #fromRow(row: UpstreamRow): StoredUpstream {
    const settings: UpstreamSettings = {
      name: row.name,
      url: row.url,
      hosts: row.hosts,
      tlsVerify: row.tls_verify,
      freshness: Number(row.freshness_seconds),
      staleIfError: row.stale_if_error,
      staleIfDeleted: row.stale_if_deleted,
      negativeTtl: Number(row.negative_ttl_seconds),
      maxConnections: row.max_connections,
      timeout: Number(row.timeout_seconds),
      circuitBreaker: {
        failures: row.breaker_failures,
        cooldown: Number(row.breaker_cooldown_seconds),
      },
      pull: row.pull as PullPolicy,
      pinned: row.pinned,
    };
    if (row.storage_budget_bytes !== null) settings.storageBudget = Number(row.storage_budget_bytes);
    if (row.username !== null && row.password_sealed !== null) {
      settings.username = row.username;
      settings.password = this.#box.open(row.password_sealed);
    }
    return {
      settings,
      createdBy: row.created_by,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

async function bumpRevision(tx: Queryable): Promise<void> {
  await tx.query('UPDATE proxy_upstreams_revision SET revision = revision + 1');
}
