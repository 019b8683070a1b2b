import type { Database, Queryable } from '../../db/database.ts';
import { conflict, invalid } from '../../errors.ts';
import type { SealedBox } from '../../identity/sealed-box.ts';
import type { PlatformSelection } from './platform-selector.ts';
import type { MirrorDefinition } from './skopeo-sync-file.ts';
import type { TagFilter } from './tag-filter.ts';
import {
  nextRunAt,
  type MirrorChanges,
  type MirrorSchedule,
  type MirrorSettings,
  type MirrorState,
} from './mirror-settings.ts';

/** A mirror as it is shown: never its password, only whether it has one. */
export interface Mirror {
  id: number;
  /** The local repository, e.g. acme/nginx. */
  repository: string;
  namespace: string;
  upstream: {
    url: string;
    repository: string;
    username: string | null;
    hasPassword: boolean;
    tlsVerify: boolean;
  };
  filter: TagFilter;
  platforms: PlatformSelection;
  schedule: MirrorSchedule;
  startAt: Date | null;
  enabled: boolean;
  deleteMissing: boolean;
  maxDeletions: number;
  /** The robot it writes as; null once that robot was deleted. */
  robot: string | null;
  concurrency: number;
  /** Bytes per second; null: unlimited. */
  bandwidthLimit: number | null;
  state: MirrorState;
  lastRunAt: Date | null;
  nextRunAt: Date | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What may write to a mirrored repository: its robot only. */
export interface MirrorWriter {
  repository: string;
  robot: string | null;
  upstream: string;
}

export interface NewMirror {
  repository: string;
  settings: MirrorSettings;
}

interface MirrorRow {
  id: string | number;
  repository: string;
  upstream_url: string;
  upstream_repository: string;
  username: string | null;
  password_sealed: string | null;
  tls_verify: boolean;
  filter: TagFilter;
  platforms: PlatformSelection;
  interval_seconds: number | null;
  cron: string | null;
  start_at: Date | null;
  enabled: boolean;
  delete_missing: boolean;
  max_deletions: number;
  robot: string | null;
  concurrency: number;
  /** bigint: a string from node-postgres. */
  bandwidth_limit: string | number | null;
  state: MirrorState;
  last_run_at: Date | null;
  next_run_at: Date | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const selectMirrors = `
  SELECT m.*, r.name AS repository, a.name AS robot
    FROM mirrors m JOIN repositories r ON r.id = m.repository_id
    LEFT JOIN accounts a ON a.id = m.robot_id`;

/**
 * Mirror definitions, one per local repository, in the database every replica shares. Upstream
 * passwords are sealed and only ever opened for a sync (`definition`). Every change bumps a revision,
 * so replicas notice which repositories are mirrors (`revision()`, `writers()`).
 */
export class MirrorStore {
  readonly #db: Database;
  readonly #box: SealedBox;
  readonly #now: () => Date;

  constructor(db: Database, box: SealedBox, options: { now?: () => Date } = {}) {
    this.#db = db;
    this.#box = box;
    this.#now = options.now ?? (() => new Date());
  }

  async revision(): Promise<number> {
    const { rows } = await this.#db.query<{ revision: string }>('SELECT revision FROM mirrors_revision');
    return Number(rows[0]?.revision ?? 0);
  }

  /**
   * Creates the mirrors, and each repository that does not exist yet, all or none: when any of the
   * repositories is a mirror already, nothing is created. Says which repositories were created.
   */
  async create(
    mirrors: readonly NewMirror[],
    createdBy: string | null,
  ): Promise<Array<{ mirror: Mirror; repositoryCreated: boolean }>> {
    return this.#db.transaction(async (tx) => {
      const taken = await tx.query<{ name: string }>(
        `SELECT r.name FROM mirrors m JOIN repositories r ON r.id = m.repository_id
          WHERE r.name = ANY($1::text[]) ORDER BY r.name`,
        [mirrors.map((m) => m.repository)],
      );
      if (taken.rows.length > 0) {
        const names = taken.rows.map((row) => row.name);
        throw conflict(
          `${names.join(', ')} ${names.length === 1 ? 'is a mirror' : 'are mirrors'} already; nothing was created`,
        );
      }
      const created: Array<{ mirror: Mirror; repositoryCreated: boolean }> = [];
      for (const { repository, settings } of mirrors) {
        const robotId = await robotOf(tx, repository, settings.robot);
        const inserted = await tx.query<{ id: string }>(
          `INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id`,
          [repository],
        );
        const { rows } = await tx.query<{ id: string }>(
          `INSERT INTO mirrors (repository_id, upstream_url, upstream_repository, username, password_sealed,
             tls_verify, filter, platforms, interval_seconds, cron, start_at, enabled, delete_missing,
             max_deletions, robot_id, concurrency, bandwidth_limit, next_run_at, created_by)
           SELECT r.id, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12, $13, $14, $15, $16,
             $17, $18, $19
             FROM repositories r WHERE r.name = $1
           RETURNING id`,
          [
            repository,
            settings.upstream.url,
            settings.upstream.repository,
            settings.upstream.username ?? null,
            settings.upstream.password === undefined ? null : this.#box.seal(settings.upstream.password),
            settings.upstream.tlsVerify,
            JSON.stringify(settings.filter),
            JSON.stringify(settings.platforms),
            ...scheduleColumns(settings.schedule),
            settings.startAt,
            settings.enabled,
            settings.deleteMissing,
            settings.maxDeletions,
            robotId,
            settings.concurrency,
            settings.bandwidthLimit,
            settings.enabled ? nextRunAt(settings.schedule, settings.startAt, this.#now()) : null,
            createdBy,
          ],
        );
        const mirror = await this.#byId(tx, rows[0]!.id);
        created.push({ mirror, repositoryCreated: inserted.rows.length > 0 });
      }
      await bumpRevision(tx);
      return created;
    });
  }

  async get(repository: string): Promise<Mirror | null> {
    const { rows } = await this.#db.query<MirrorRow>(`${selectMirrors} WHERE r.name = $1`, [repository]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async getById(id: number): Promise<Mirror | null> {
    const { rows } = await this.#db.query<MirrorRow>(`${selectMirrors} WHERE m.id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Records when the mirror syncs next, as its scheduler says (null: not scheduled). */
  async setNextRun(id: number, next: Date | null): Promise<void> {
    await this.#db.query('UPDATE mirrors SET next_run_at = $2 WHERE id = $1', [id, next]);
  }

  /** Every mirror, or those of one namespace, in repository name order. */
  async list(options: { namespace?: string } = {}): Promise<Mirror[]> {
    const { rows } =
      options.namespace === undefined
        ? await this.#db.query<MirrorRow>(`${selectMirrors} ORDER BY r.name`)
        : await this.#db.query<MirrorRow>(`${selectMirrors} WHERE r.name LIKE $1 || '/%' ORDER BY r.name`, [
            escapeLike(options.namespace),
          ]);
    return rows.map(fromRow);
  }

  /** Applies the changes; the mirror as it now is, or null when the repository is no mirror. */
  async update(repository: string, changes: MirrorChanges): Promise<Mirror | null> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<MirrorRow>(`${selectMirrors} WHERE r.name = $1 FOR UPDATE OF m`, [
        repository,
      ]);
      const row = rows[0];
      if (!row) return null;
      const current = fromRow(row);
      const upstream = changes.upstream ?? {};
      let username = current.upstream.username;
      let sealed = row.password_sealed;
      if (upstream.password === null || upstream.username === null) {
        username = null;
        sealed = null;
      } else {
        if (upstream.username !== undefined) username = upstream.username;
        if (upstream.password !== undefined) sealed = this.#box.seal(upstream.password);
      }
      if ((username === null) !== (sealed === null)) {
        throw invalid('give both username and password, or neither');
      }
      const robotId = changes.robot === undefined ? null : await robotOf(tx, repository, changes.robot);
      const schedule = changes.schedule ?? current.schedule;
      const startAt = changes.startAt === undefined ? current.startAt : changes.startAt;
      const enabled = changes.enabled ?? current.enabled;
      const rescheduled =
        changes.schedule !== undefined || changes.startAt !== undefined || changes.enabled !== undefined;
      const next = !enabled
        ? null
        : rescheduled || current.nextRunAt === null
          ? nextRunAt(schedule, startAt, this.#now())
          : current.nextRunAt;
      await tx.query(
        `UPDATE mirrors SET upstream_url = $2, upstream_repository = $3, username = $4, password_sealed = $5,
           tls_verify = $6, filter = $7::jsonb, platforms = $8::jsonb, interval_seconds = $9, cron = $10,
           start_at = $11, enabled = $12, delete_missing = $13, max_deletions = $14,
           robot_id = COALESCE($15, robot_id), concurrency = $16, bandwidth_limit = $17, next_run_at = $18,
           updated_at = now()
         WHERE id = $1`,
        [
          row.id,
          upstream.url ?? current.upstream.url,
          upstream.repository ?? current.upstream.repository,
          username,
          sealed,
          upstream.tlsVerify ?? current.upstream.tlsVerify,
          JSON.stringify(changes.filter ?? current.filter),
          JSON.stringify(changes.platforms ?? current.platforms),
          ...scheduleColumns(schedule),
          startAt,
          enabled,
          changes.deleteMissing ?? current.deleteMissing,
          changes.maxDeletions ?? current.maxDeletions,
          robotId,
          changes.concurrency ?? current.concurrency,
          changes.bandwidthLimit === undefined ? current.bandwidthLimit : changes.bandwidthLimit,
          next,
        ],
      );
      await bumpRevision(tx);
      return this.#byId(tx, row.id);
    });
  }

  /** Removes the mirror (the repository and its tags stay, writable again); false when there was none. */
  async delete(repository: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const { rowCount } = await tx.query(
        'DELETE FROM mirrors WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)',
        [repository],
      );
      if (rowCount === 0) return false;
      await bumpRevision(tx);
      return true;
    });
  }

  /** What a sync of the mirror runs with, its credentials opened; null when there is no such mirror. */
  async definition(repository: string): Promise<MirrorDefinition | null> {
    const { rows } = await this.#db.query<MirrorRow>(`${selectMirrors} WHERE r.name = $1`, [repository]);
    const row = rows[0];
    if (!row) return null;
    const credentials =
      row.username !== null && row.password_sealed !== null
        ? { username: row.username, password: this.#box.open(row.password_sealed) }
        : undefined;
    return {
      name: row.repository,
      upstream: {
        url: row.upstream_url,
        repository: row.upstream_repository,
        tlsVerify: row.tls_verify,
        ...(credentials && { credentials }),
      },
      filter: row.filter,
      platforms: row.platforms,
    };
  }

  /** Every mirrored repository with the robot that alone may write to it. */
  async writers(): Promise<MirrorWriter[]> {
    const { rows } = await this.#db.query<{
      repository: string;
      robot: string | null;
      url: string;
      upstream: string;
    }>(
      `SELECT r.name AS repository, a.name AS robot, m.upstream_url AS url, m.upstream_repository AS upstream
         FROM mirrors m JOIN repositories r ON r.id = m.repository_id
         LEFT JOIN accounts a ON a.id = m.robot_id`,
    );
    return rows.map((row) => ({
      repository: row.repository,
      robot: row.robot,
      upstream: `${new URL(row.url).host}/${row.upstream}`,
    }));
  }

  async #byId(tx: Queryable, id: string | number): Promise<Mirror> {
    const { rows } = await tx.query<MirrorRow>(`${selectMirrors} WHERE m.id = $1`, [id]);
    return fromRow(rows[0]!);
  }
}

/**
 * The id of the robot a mirror of `repository` writes as: given by its full name (acme+mirror) or by
 * its short name in the repository's namespace (mirror); it must be a robot of that namespace.
 */
async function robotOf(tx: Queryable, repository: string, given: string): Promise<number> {
  const namespace = repository.slice(0, repository.indexOf('/'));
  const name = given.includes('+') ? given : `${namespace}+${given}`;
  const { rows } = await tx.query<{ id: string; kind: string; owner: string | null }>(
    `SELECT a.id, a.kind, o.name AS owner FROM accounts a LEFT JOIN accounts o ON o.id = a.owner_id
      WHERE a.name = $1`,
    [name],
  );
  const account = rows[0];
  if (!account) {
    if (
      name !== given &&
      (await tx.query('SELECT 1 FROM accounts WHERE name = $1', [given])).rows.length > 0
    ) {
      throw invalid(`${given} is not a robot account; a mirror writes as a robot of ${namespace}`);
    }
    throw invalid(`robot ${name} does not exist; create it first (slipway robot create ${name})`);
  }
  if (account.kind !== 'robot') {
    throw invalid(`${name} is not a robot account; a mirror writes as a robot of ${namespace}`);
  }
  if (account.owner !== namespace) {
    throw invalid(
      `robot ${name} belongs to another namespace; a mirror of ${repository} writes as a robot of ${namespace}`,
    );
  }
  return Number(account.id);
}

function scheduleColumns(schedule: MirrorSchedule): [number | null, string | null] {
  return 'cron' in schedule ? [null, schedule.cron] : [schedule.interval, null];
}

function fromRow(row: MirrorRow): Mirror {
  return {
    id: Number(row.id),
    repository: row.repository,
    namespace: row.repository.slice(0, row.repository.indexOf('/')),
    upstream: {
      url: row.upstream_url,
      repository: row.upstream_repository,
      username: row.username,
      hasPassword: row.password_sealed !== null,
      tlsVerify: row.tls_verify,
    },
    filter: row.filter,
    platforms: row.platforms,
    schedule: row.cron !== null ? { cron: row.cron } : { interval: Number(row.interval_seconds) },
    startAt: row.start_at,
    enabled: row.enabled,
    deleteMissing: row.delete_missing,
    maxDeletions: row.max_deletions,
    robot: row.robot,
    concurrency: row.concurrency,
    bandwidthLimit: row.bandwidth_limit === null ? null : Number(row.bandwidth_limit),
    state: row.state,
    lastRunAt: row.last_run_at,
    nextRunAt: row.next_run_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, '\\$&');
}

async function bumpRevision(tx: Queryable): Promise<void> {
  await tx.query('UPDATE mirrors_revision SET revision = revision + 1');
}
