import type { Database, Queryable } from '../db/database.ts';

/** What the audit log records; the names follow Quay's log kinds where Quay has one. */
export type AuditKind =
  | 'pull_repo'
  | 'push_repo'
  | 'delete_tag'
  | 'delete_manifest'
  | 'delete_blob'
  | 'restore_tag'
  | 'create_repo'
  | 'delete_repo'
  | 'change_repo_visibility'
  | 'change_repo_permission'
  | 'delete_repo_permission'
  | 'login_success'
  | 'login_failure'
  | 'issue_token'
  | 'create_user'
  | 'delete_user'
  | 'change_user'
  | 'create_organization'
  | 'delete_organization'
  | 'create_team'
  | 'delete_team'
  | 'add_team_member'
  | 'remove_team_member'
  | 'create_robot'
  | 'delete_robot'
  | 'regenerate_robot_token'
  | 'create_personal_token'
  | 'revoke_personal_token'
  | 'issue_build_token'
  | 'revoke_build_token'
  | 'add_repo_notification'
  | 'change_repo_notification'
  | 'delete_repo_notification'
  | 'create_proxy_upstream'
  | 'change_proxy_upstream'
  | 'delete_proxy_upstream'
  | 'create_repo_mirror'
  | 'change_repo_mirror'
  | 'delete_repo_mirror'
  | 'sync_repo_mirror'
  | 'cancel_repo_mirror_sync'
  | 'setup_repo_trigger'
  | 'change_repo_trigger'
  | 'delete_repo_trigger'
  | 'rotate_repo_trigger_secret'
  | 'start_build'
  | 'cancel_build';

export interface AuditEntry {
  kind: AuditKind;
  actor: string | null;
  actorKind?: string | null;
  ip?: string | null;
  namespace?: string | null;
  repository?: string | null;
  target?: string | null;
  success?: boolean;
  metadata?: Record<string, unknown>;
}

export interface AuditRecord extends Required<Omit<AuditEntry, 'metadata'>> {
  id: number;
  occurredAt: Date;
  metadata: Record<string, unknown>;
}

export interface AuditQuery {
  repository?: string;
  namespace?: string;
  actor?: string;
  kinds?: string[];
  since?: Date;
  until?: Date;
  /** Entries older than this id (the `next` of the previous page). */
  before?: number;
  limit: number;
}

const flushEveryMs = 500;
const flushAtEntries = 500;

/**
 * Changes (permissions, accounts, tokens) are written in the transaction that makes them. Pulls,
 * pushes and logins, which come by the thousand, are buffered and written in batches every half
 * second, so a registry GET does not wait for an INSERT; a crash loses at most that half second.
 */
export class AuditLog {
  readonly #db: Database;
  #pending: Array<AuditEntry & { at: Date }> = [];
  /** This batch's pulls by what makes them the same pull. */
  #pulls = new Map<string, AuditEntry & { at: Date }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly #onError: (error: unknown) => void;

  constructor(db: Database, onError: (error: unknown) => void = () => {}) {
    this.#db = db;
    this.#onError = onError;
  }

  /** Records in the caller's transaction. */
  async write(q: Queryable, entry: AuditEntry): Promise<void> {
    await insert(q, [{ ...entry, at: new Date() }]);
  }

  /**
   * Records soon, in a batch. Repeats of the same pull (same actor, address, repository and
   * reference) within one batch become one entry with a `count`, so a busy registry writes a row per
   * distinct pull every half second, not one per request.
   */
  record(entry: AuditEntry): void {
    if (entry.kind === 'pull_repo') {
      const key = `${entry.actor}\0${entry.ip}\0${entry.repository}\0${entry.target}`;
      const seen = this.#pulls.get(key);
      if (seen) {
        (seen.metadata as { count: number }).count += 1;
        return;
      }
      const pending = { ...entry, at: new Date(), metadata: { ...entry.metadata, count: 1 } };
      this.#pulls.set(key, pending);
      this.#pending.push(pending);
    } else {
      this.#pending.push({ ...entry, at: new Date() });
    }
    if (this.#pending.length >= flushAtEntries) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), flushEveryMs).unref();
  }

  /** Writes everything recorded so far. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = [];
    this.#pulls = new Map();
    this.#flushing = this.#flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await insert(this.#db, batch);
      } catch (error) {
        this.#onError(error);
      }
    });
    return this.#flushing;
  }

  async query(filter: AuditQuery): Promise<{ entries: AuditRecord[]; next?: number }> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    const where = (sql: string, value: unknown) => {
      params.push(value);
      conditions.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.repository) where('repository = ?', filter.repository);
    if (filter.namespace) where('namespace = ?', filter.namespace);
    if (filter.actor) where('actor = ?', filter.actor);
    if (filter.kinds?.length) where('kind = ANY(?)', filter.kinds);
    if (filter.since) where('occurred_at >= ?', filter.since);
    if (filter.until) where('occurred_at < ?', filter.until);
    if (filter.before !== undefined) where('id < ?', filter.before);
    params.push(filter.limit + 1);
    const { rows } = await this.#db.query<{
      id: number;
      occurred_at: Date | string;
      kind: AuditKind;
      actor: string | null;
      actor_kind: string | null;
      ip: string | null;
      namespace: string | null;
      repository: string | null;
      target: string | null;
      success: boolean;
      metadata: Record<string, unknown> | string;
    }>(
      `SELECT id, occurred_at, kind, actor, actor_kind, ip, namespace, repository, target, success, metadata
         FROM audit_log ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''}
        ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    const entries = rows.slice(0, filter.limit).map((row) => ({
      id: Number(row.id),
      occurredAt: new Date(row.occurred_at),
      kind: row.kind,
      actor: row.actor,
      actorKind: row.actor_kind,
      ip: row.ip,
      namespace: row.namespace,
      repository: row.repository,
      target: row.target,
      success: row.success,
      metadata: typeof row.metadata === 'string' ? JSON.parse(row.metadata) : row.metadata,
    }));
    return rows.length > filter.limit ? { entries, next: entries.at(-1)!.id } : { entries };
  }
}

async function insert(q: Queryable, entries: Array<AuditEntry & { at: Date }>): Promise<void> {
  const values: string[] = [];
  const params: unknown[] = [];
  for (const entry of entries) {
    const row = [
      entry.at,
      entry.kind,
      entry.actor,
      entry.actorKind ?? null,
      entry.ip ?? null,
      entry.namespace ?? null,
      entry.repository ?? null,
      entry.target ?? null,
      entry.success ?? true,
      JSON.stringify(entry.metadata ?? {}),
    ];
    values.push(`(${row.map((_, i) => `$${params.length + i + 1}`).join(', ')})`);
    params.push(...row);
  }
  await q.query(
    `INSERT INTO audit_log (occurred_at, kind, actor, actor_kind, ip, namespace, repository, target, success, metadata)
     VALUES ${values.join(', ')}`,
    params,
  );
}
