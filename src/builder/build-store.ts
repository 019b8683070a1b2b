import type { Database, Queryable } from '../db/database.ts';
import { isUuid } from '../db/uuid.ts';

export const activePhases = ['waiting', 'cloning', 'building', 'pushing'] as const;
export const endPhases = ['complete', 'error', 'cancelled', 'timeout', 'internal_error'] as const;
export const buildPhases = [...activePhases, ...endPhases] as const;
export type ActivePhase = (typeof activePhases)[number];
export type EndPhase = (typeof endPhases)[number];
export type BuildPhase = (typeof buildPhases)[number];
/** The phases a builder reports while it works. */
export type WorkPhase = Exclude<ActivePhase, 'waiting'>;

export type TriggerKind = 'github' | 'gitlab' | 'git' | 'manual';

/** The push a build came from, as the git provider told of it. */
export interface PushMetadata {
  author?: { name?: string; email?: string; username?: string };
  message?: string;
  compareUrl?: string;
  defaultBranch?: string;
  pushedAt?: string;
}

/** What to build: a database record first, then a job. */
export interface NewBuild {
  repository: string;
  triggerId: string | null;
  triggerKind: TriggerKind;
  cloneUrl: string;
  /** The full ref, e.g. refs/heads/main; null for a build of a bare commit. */
  ref: string | null;
  /** The commit to build; null for a manual build of a ref, resolved when it is cloned. */
  commit: string | null;
  push?: PushMetadata;
  dockerfile: string;
  context: string;
  buildArgs: Record<string, string>;
  tags: string[];
  requestedBy: string | null;
  /** The robot account (namespace+name) whose read access the build also pulls with; null for none. */
  pullRobot?: string | null;
}

export interface Build extends NewBuild {
  id: string;
  /** The pull robot the build ran with, as it was named then. */
  pullRobot: string | null;
  phase: BuildPhase;
  cancelRequested: boolean;
  builder: string | null;
  digest: string | null;
  imageBytes: number | null;
  /** Milliseconds spent in each phase so far. */
  phaseMs: Partial<Record<WorkPhase, number>>;
  error: string | null;
  /** The archived log's digest, once the build ended and its log was archived. */
  logDigest: string | null;
  queuedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** How a build ended, as its builder (or the gateway) reports it. */
export interface BuildEnd {
  phase: EndPhase;
  error?: string;
  digest?: string;
  imageBytes?: number;
  /** The commit that was built, when the build named a ref only. */
  commit?: string;
  phaseMs?: Partial<Record<WorkPhase, number>>;
}

/** How many ended builds a repository keeps, and for how long; 0 lifts either limit. */
export interface BuildRetention {
  keep: number;
  maxAgeSeconds: number;
}

interface BuildRow {
  id: string;
  repository: string;
  trigger_id: string | null;
  trigger_kind: TriggerKind;
  phase: BuildPhase;
  clone_url: string;
  ref: string | null;
  commit_sha: string | null;
  push: PushMetadata | null;
  dockerfile: string;
  context: string;
  build_args: Record<string, string>;
  tags: string[];
  requested_by: string | null;
  pull_robot: string | null;
  cancel_requested: boolean;
  builder: string | null;
  digest: string | null;
  image_bytes: string | number | null;
  phase_ms: Partial<Record<WorkPhase, number>>;
  error: string | null;
  log_digest: string | null;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const selectBuilds = `SELECT b.*, r.name AS repository FROM builds b JOIN repositories r ON r.id = b.repository_id`;
const active = `phase IN ('waiting', 'cloning', 'building', 'pushing')`;

/**
 * Builds as recorded in the database, through their phases: `waiting` until a builder claims one, then
 * `cloning`, `building`, `pushing`, and one end phase. A claim holds while its builder's heartbeats
 * renew it; every change a builder makes names the builder, so one whose claim was lost changes nothing.
 */
export class BuildStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Records a new build; when the trigger is already building the same commit, that build instead
   * (`created: false`), as the same commit is never built twice at once for one trigger.
   */
  async create(tx: Queryable, build: NewBuild): Promise<{ build: Build; created: boolean }> {
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO builds (repository_id, trigger_id, trigger_kind, clone_url, ref, commit_sha, push, dockerfile,
         context, build_args, tags, requested_by, pull_robot)
       SELECT r.id, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10::jsonb, $11::jsonb, $12, $13
         FROM repositories r WHERE r.name = $1
       ON CONFLICT (trigger_id, commit_sha) WHERE ${active} DO NOTHING
       RETURNING id`,
      [
        build.repository,
        build.triggerId,
        build.triggerKind,
        build.cloneUrl,
        build.ref,
        build.commit,
        build.push ? JSON.stringify(build.push) : null,
        build.dockerfile,
        build.context,
        JSON.stringify(build.buildArgs),
        JSON.stringify(build.tags),
        build.requestedBy,
        build.pullRobot ?? null,
      ],
    );
    if (rows[0]) return { build: (await this.#get(tx, rows[0].id))!, created: true };
    const existing = await tx.query<BuildRow>(
      `${selectBuilds} WHERE b.trigger_id = $1 AND b.commit_sha = $2 AND b.${active}`,
      [build.triggerId, build.commit],
    );
    if (!existing.rows[0]) throw new Error(`repository ${build.repository} does not exist`);
    return { build: fromRow(existing.rows[0]), created: false };
  }

  get(id: string): Promise<Build | null> {
    return this.#get(this.#db, id);
  }

  /** The builds of a repository, newest first; `before` pages back from a build's queue time. */
  async list(repository: string, options: { limit?: number; before?: Date } = {}): Promise<Build[]> {
    const { rows } = await this.#db.query<BuildRow>(
      `${selectBuilds} WHERE r.name = $1 AND ($2::timestamptz IS NULL OR b.queued_at < $2)
        ORDER BY b.queued_at DESC, b.id LIMIT $3`,
      [repository, options.before ?? null, options.limit ?? 50],
    );
    return rows.map(fromRow);
  }

  /** A waiting build taken by a builder: it moves to `cloning`; null when it is no longer waiting. */
  async claim(id: string, builder: string, claimSeconds: number): Promise<Build | null> {
    const { rows } = await this.#db.query<{ id: string }>(
      `UPDATE builds SET phase = 'cloning', builder = $2, started_at = now(), phase_changed_at = now(),
         claim_expires_at = now() + make_interval(secs => $3)
       WHERE id = $1 AND phase = 'waiting' AND NOT cancel_requested
       RETURNING id`,
      [id, builder, claimSeconds],
    );
    return rows[0] ? this.get(id) : null;
  }

  /**
   * The builder is still at it: its claim is renewed. Answers whether the build should stop (it was
   * cancelled), or null when the builder no longer holds it.
   */
  async heartbeat(id: string, builder: string, claimSeconds: number): Promise<{ cancel: boolean } | null> {
    const { rows } = await this.#db.query<{ cancel_requested: boolean }>(
      `UPDATE builds SET claim_expires_at = now() + make_interval(secs => $3)
        WHERE id = $1 AND builder = $2 AND phase IN ('cloning', 'building', 'pushing')
        RETURNING cancel_requested`,
      [id, builder, claimSeconds],
    );
    return rows[0] ? { cancel: rows[0].cancel_requested } : null;
  }

  /** Moves a build its builder holds to the next phase, with the time the last one took; false when not held. */
  async setPhase(
    tx: Queryable,
    id: string,
    builder: string,
    phase: WorkPhase,
    phaseMs: Partial<Record<WorkPhase, number>>,
  ): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE builds SET phase = $3, phase_ms = phase_ms || $4::jsonb, phase_changed_at = now()
        WHERE id = $1 AND builder = $2 AND phase IN ('cloning', 'building', 'pushing')`,
      [id, builder, phase, JSON.stringify(phaseMs)],
    );
    return (rowCount ?? 0) > 0;
  }

  /**
   * Ends a build that is still under way: held by `builder`, or by anyone when `builder` is null (the
   * gateway ending a waiting build, or one whose builder vanished). The build as it ended; null when
   * it had ended already or another builder holds it.
   */
  async finish(tx: Queryable, id: string, builder: string | null, end: BuildEnd): Promise<Build | null> {
    const { rows } = await tx.query<{ id: string }>(
      `UPDATE builds SET phase = $3, error = $4, digest = COALESCE($5, digest), image_bytes = COALESCE($6, image_bytes),
         commit_sha = COALESCE(commit_sha, $7), phase_ms = phase_ms || $8::jsonb, finished_at = now(),
         phase_changed_at = now(), claim_expires_at = NULL
       WHERE id = $1 AND ${active} AND ($2::text IS NULL OR builder = $2)
       RETURNING id`,
      [
        id,
        builder,
        end.phase,
        end.error ?? null,
        end.digest ?? null,
        end.imageBytes ?? null,
        end.commit ?? null,
        JSON.stringify(end.phaseMs ?? {}),
      ],
    );
    return rows[0] ? this.#get(tx, id) : null;
  }

  async setLogDigest(id: string, digest: string): Promise<void> {
    await this.#db.query('UPDATE builds SET log_digest = $2 WHERE id = $1', [id, digest]);
  }

  /** Asks a build under way to stop; its phase, or null when it was not under way. */
  async requestCancel(id: string): Promise<BuildPhase | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.#db.query<{ phase: BuildPhase }>(
      `UPDATE builds SET cancel_requested = true WHERE id = $1 AND ${active} RETURNING phase`,
      [id],
    );
    return rows[0]?.phase ?? null;
  }

  /** Builds whose builder stopped renewing its claim, and waiting builds queued before `waitingSince`. */
  async stalled(
    waitingSince: Date,
  ): Promise<Array<{ id: string; phase: ActivePhase; builder: string | null }>> {
    const { rows } = await this.#db.query<{ id: string; phase: ActivePhase; builder: string | null }>(
      `SELECT id, phase, builder FROM builds
        WHERE (phase IN ('cloning', 'building', 'pushing') AND claim_expires_at < now())
           OR (phase = 'waiting' AND queued_at < $1)`,
      [waitingSince],
    );
    return rows;
  }

  /**
   * Deletes ended builds past retention, a batch at a time: beyond the newest `keep` ended builds of
   * their repository, or ended more than `maxAgeSeconds` ago; 0 lifts either limit. Their log holds go
   * with them. Builds under way are never deleted, nor counted. How many were deleted.
   */
  async deleteExpired(retention: BuildRetention, batchSize: number): Promise<number> {
    const { keep, maxAgeSeconds } = retention;
    if (keep === 0 && maxAgeSeconds === 0) return 0;
    const { rowCount } = await this.#db.query(
      `DELETE FROM builds WHERE id IN (
         SELECT id FROM (
           SELECT id, finished_at,
                  row_number() OVER (PARTITION BY repository_id ORDER BY queued_at DESC, id) AS newest
             FROM builds WHERE NOT (${active})
         ) ended
          WHERE ($1::integer > 0 AND newest > $1::integer)
             OR ($2::float8 > 0 AND finished_at < now() - make_interval(secs => $2::float8))
          LIMIT $3::integer)`,
      [keep, maxAgeSeconds, batchSize],
    );
    return rowCount;
  }

  async #get(db: Queryable, id: string): Promise<Build | null> {
    if (!isUuid(id)) return null;
    const { rows } = await db.query<BuildRow>(`${selectBuilds} WHERE b.id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }
}

function fromRow(row: BuildRow): Build {
  return {
    id: row.id,
    repository: row.repository,
    triggerId: row.trigger_id,
    triggerKind: row.trigger_kind,
    phase: row.phase,
    cloneUrl: row.clone_url,
    ref: row.ref,
    commit: row.commit_sha,
    ...(row.push && { push: row.push }),
    dockerfile: row.dockerfile,
    context: row.context,
    buildArgs: row.build_args,
    tags: row.tags,
    requestedBy: row.requested_by,
    pullRobot: row.pull_robot,
    cancelRequested: row.cancel_requested,
    builder: row.builder,
    digest: row.digest,
    imageBytes: row.image_bytes === null ? null : Number(row.image_bytes),
    phaseMs: row.phase_ms,
    error: row.error,
    logDigest: row.log_digest,
    queuedAt: row.queued_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export function isActive(phase: BuildPhase): phase is ActivePhase {
  return (activePhases as readonly string[]).includes(phase);
}
