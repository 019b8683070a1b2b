import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../db/database.ts';
import { ApiError, messageOf, notFound } from '../../errors.ts';
import type { EventFields } from '../../events/catalog.ts';
import { subjectOfRepository, type Outbox } from '../../events/outbox.ts';
import type { Digest } from '../../registry/digest.ts';
import type { LocalRegistryStore } from '../../registry/local-store.ts';
import { UpstreamClient } from '../upstream/client.ts';
import type { Mirror, MirrorStore } from './mirror-store.ts';
import type { RetryPolicy } from './retry.ts';
import type { MirrorDefinition } from './skopeo-sync-file.ts';
import { runMirrorSync } from './sync-engine.ts';
import { countOutcomes, type MirrorSyncResult, type TagOutcome, type TagResult } from './sync-result.ts';
import type { TagFilter } from './tag-filter.ts';

/** What started a run: the mirror's schedule, or someone asking for it. */
export type MirrorTrigger = 'schedule' | 'manual';

export const mirrorRunStates = ['queued', 'syncing', 'success', 'failed', 'cancelled'] as const;
export type MirrorRunState = (typeof mirrorRunStates)[number];

/** One sync of a mirror, as recorded. */
export interface MirrorRun {
  id: number;
  /** The mirrored repository, e.g. acme/nginx. */
  repository: string;
  trigger: MirrorTrigger;
  state: MirrorRunState;
  dryRun: boolean;
  /** When it started; while queued, when it was asked for. */
  startedAt: Date;
  /** Null while it is queued or runs. */
  finishedAt: Date | null;
  cancelRequested: boolean;
  /** Tags per outcome: of the tags recorded so far while it runs. */
  totals: Record<TagOutcome, number>;
  /** Bytes downloaded from the upstream. */
  bytesCopied: number;
  /** Why it failed: the error that ended it, or which tags failed. */
  error: string | null;
}

export interface MirrorRunDetails extends MirrorRun {
  /** What it did with each tag, in the order the results came. */
  tags: TagResult[];
}

export interface MirrorRunRequest {
  trigger: MirrorTrigger;
  /** Only compare digests and record what a sync would do: nothing is written, and no event is sent. */
  dryRun?: boolean;
}

/** A run of the mirror is under way, here or in another process; `runId` is that run. */
export class MirrorBusyError extends ApiError {
  readonly runId: number;
  constructor(repository: string, runId: number) {
    super('SLW_ERR_CONFLICT', `${repository} is syncing already (run ${runId}); wait for it, or cancel it`);
    this.runId = runId;
  }
}

export interface MirrorRunnerOptions {
  db: Database;
  mirrors: MirrorStore;
  local: LocalRegistryStore;
  outbox: Outbox;
  /** A run's lease is renewed every third of this; one not renewed for this long is taken over. Default 60 s. */
  leaseSeconds?: number;
  /** How long a queued run may wait for a worker to start it. Default 600 s. */
  queueTimeoutSeconds?: number;
  /** How often a run looks whether it was asked to cancel. Default 1 s. */
  cancelPollMs?: number;
  /** How a failed tag is tried again (the engine's default when absent). */
  retry?: RetryPolicy;
}

/** Why a run taken over from a worker that stopped renewing its lease failed. */
export const abandonedRunError = 'the worker running it stopped';

/** Why a run stopped by its worker shutting down failed. */
export const shutdownRunError = 'the worker running it was shut down; the next run copies what is left';
const shutdownReason = Symbol('shutdown');

/** Why a queued run that no worker started failed. */
export function unstartedRunError(queueTimeoutSeconds: number): string {
  return `no worker started it within ${queueTimeoutSeconds}s: is a worker running mirror syncs (slipway worker, or slipway serve with mirrors.worker on)?`;
}

/** The tags a run (`mr`) recorded, per outcome: `{"copied": 2, "failed": 1}`. */
const recordedTotals = `(SELECT COALESCE(jsonb_object_agg(c.outcome, c.n), '{}')
  FROM (SELECT outcome, count(*) AS n FROM mirror_run_tags WHERE run_id = mr.id GROUP BY outcome) c)`;

const runColumns = `
  mr.id, r.name AS repository, mr.trigger, mr.state, mr.dry_run, mr.started_at, mr.finished_at,
  mr.cancel_requested, mr.bytes_copied, mr.error,
  COALESCE(mr.totals, ${recordedTotals}) AS totals`;
const runsOfMirrors = `
  FROM mirror_runs mr JOIN mirrors m ON m.id = mr.mirror_id JOIN repositories r ON r.id = m.repository_id`;

interface RunRow {
  id: string;
  repository: string;
  trigger: MirrorTrigger;
  state: MirrorRunState;
  dry_run: boolean;
  started_at: Date;
  finished_at: Date | null;
  cancel_requested: boolean;
  /** bigint: a string from node-postgres. */
  bytes_copied: string | number;
  error: string | null;
  totals: Partial<Record<TagOutcome, number | string>> | null;
}

/**
 * Runs mirror syncs and records them: one run per mirror at a time across every process sharing the
 * database, held by a lease in the run's row that the running process renews. A run whose lease ran
 * out (its process died) is marked failed by the next run of the mirror, which takes over.
 *
 * Each tag's result is written as the engine reports it, so a run that never ends still shows what it
 * did. A run ends `success`, `cancelled`, or `failed` when the engine threw (the tag list could not be
 * read), any tag failed, or deleting tags gone upstream was refused for exceeding the limit.
 *
 * Except in a dry run, the mirror's `state` follows the run (`syncing` while it runs) and its
 * `last_run_at` is when the run started; `repo_mirror_sync_started` is sent when it starts, and
 * `repo_mirror_sync_success` or `repo_mirror_sync_failed` when it ends (a cancelled run, and one
 * taken over, end with `repo_mirror_sync_failed`: whoever saw it start hears that it stopped).
 * A dry run is recorded the same way and holds the lease, but changes nothing else.
 */
export class MirrorRunner {
  readonly #db: Database;
  readonly #mirrors: MirrorStore;
  readonly #local: LocalRegistryStore;
  readonly #outbox: Outbox;
  readonly #leaseSeconds: number;
  readonly #queueTimeoutSeconds: number;
  readonly #cancelPollMs: number;
  readonly #retry: RetryPolicy | undefined;
  /** This process, as a lease holder. */
  readonly #owner = randomUUID();
  /** The runs under way in this process. */
  readonly #running = new Set<AbortController>();

  constructor(options: MirrorRunnerOptions) {
    this.#db = options.db;
    this.#mirrors = options.mirrors;
    this.#local = options.local;
    this.#outbox = options.outbox;
    this.#leaseSeconds = options.leaseSeconds ?? 60;
    this.#queueTimeoutSeconds = options.queueTimeoutSeconds ?? 600;
    this.#cancelPollMs = options.cancelPollMs ?? 1000;
    this.#retry = options.retry;
  }

  /**
   * Syncs the mirror of `repository` now, in this process, and returns the run as recorded. Refused
   * with `MirrorBusyError` while another run of it is queued or holds its lease; not found when the
   * repository is no mirror.
   */
  async run(repository: string, request: MirrorRunRequest): Promise<MirrorRunDetails> {
    const { mirror, definition } = await this.#mirrorOf(repository);
    const dryRun = request.dryRun ?? false;
    const runId = await this.#db.transaction(async (tx) => {
      await this.#clearTheWay(tx, mirror, definition);
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO mirror_runs (mirror_id, trigger, dry_run, lease_owner, lease_expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id`,
        [mirror.id, request.trigger, dryRun, this.#owner, this.#leaseSeconds],
      );
      const id = Number(rows[0]!.id);
      if (!dryRun) await this.#markStarted(tx, mirror, definition, request.trigger);
      return id;
    });
    return this.#execute(mirror, definition, runId, dryRun);
  }

  /**
   * Records a run of the mirror as `queued`, for a worker to start with `runQueued`; refused with
   * `MirrorBusyError` while another run is queued or syncing. A queued run nobody starts within the
   * queue timeout is marked failed by the next run of the mirror.
   */
  async enqueue(repository: string, request: MirrorRunRequest): Promise<MirrorRun> {
    const { mirror, definition } = await this.#mirrorOf(repository);
    const runId = await this.#db.transaction(async (tx) => {
      await this.#clearTheWay(tx, mirror, definition);
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO mirror_runs (mirror_id, trigger, state, dry_run, lease_expires_at)
         VALUES ($1, $2, 'queued', $3, now() + make_interval(secs => $4)) RETURNING id`,
        [mirror.id, request.trigger, request.dryRun ?? false, this.#queueTimeoutSeconds],
      );
      return Number(rows[0]!.id);
    });
    return (await this.runDetails(runId))!;
  }

  /**
   * Starts a queued run in this process and returns it as recorded when it ends; null when the run is
   * no longer queued (cancelled, timed out, or started by another worker), or its mirror is gone.
   */
  async runQueued(runId: number): Promise<MirrorRunDetails | null> {
    const queued = await this.runDetails(runId);
    if (!queued || queued.state !== 'queued') return null;
    const mirror = await this.#mirrors.get(queued.repository);
    const definition = await this.#mirrors.definition(queued.repository);
    if (!mirror || !definition) return null;
    const started = await this.#db.transaction(async (tx) => {
      await tx.query('SELECT id FROM mirrors WHERE id = $1 FOR UPDATE', [mirror.id]);
      const { rowCount } = await tx.query(
        `UPDATE mirror_runs SET state = 'syncing', started_at = now(), lease_owner = $2,
           lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND state = 'queued'`,
        [runId, this.#owner, this.#leaseSeconds],
      );
      if (rowCount === 0) return false;
      if (!queued.dryRun) await this.#markStarted(tx, mirror, definition, queued.trigger);
      return true;
    });
    return started ? this.#execute(mirror, definition, runId, queued.dryRun) : null;
  }

  /**
   * Stops the mirror's run under way: a queued run ends `cancelled` at once; a syncing one is asked to
   * stop, and ends `cancelled` within a second or so. Its id, or null when none was under way.
   */
  async cancel(repository: string): Promise<number | null> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string; state: MirrorRunState }>(
        `SELECT mr.id, mr.state ${runsOfMirrors}
          WHERE r.name = $1 AND mr.state IN ('queued', 'syncing') FOR UPDATE OF mr`,
        [repository],
      );
      const run = rows[0];
      if (!run) return null;
      await tx.query(
        run.state === 'queued'
          ? `UPDATE mirror_runs SET state = 'cancelled', cancel_requested = true, finished_at = now(),
               lease_expires_at = NULL, totals = '{}' WHERE id = $1`
          : 'UPDATE mirror_runs SET cancel_requested = true WHERE id = $1',
        [run.id],
      );
      return Number(run.id);
    });
  }

  /**
   * Stops the runs under way in this process (it is shutting down): each ends `failed`, saying so,
   * with what it had done recorded; the mirror's next run copies the rest.
   */
  stopRuns(): void {
    for (const controller of this.#running) controller.abort(shutdownReason);
  }

  /** The mirror's latest runs, newest first, without their tags. */
  async history(repository: string, limit = 20): Promise<MirrorRun[]> {
    const { rows } = await this.#db.query<RunRow>(
      `SELECT ${runColumns} ${runsOfMirrors} WHERE r.name = $1 ORDER BY mr.id DESC LIMIT $2`,
      [repository, limit],
    );
    return rows.map(runOf);
  }

  /** A run with what it did with each tag; null when there is no such run. */
  async runDetails(runId: number): Promise<MirrorRunDetails | null> {
    const { rows } = await this.#db.query<RunRow>(`SELECT ${runColumns} ${runsOfMirrors} WHERE mr.id = $1`, [
      runId,
    ]);
    if (!rows[0]) return null;
    const tags = await this.#db.query<{
      tag: string;
      outcome: TagOutcome;
      digest: string | null;
      reason: string | null;
      bytes: string | number | null;
    }>('SELECT tag, outcome, digest, reason, bytes FROM mirror_run_tags WHERE run_id = $1 ORDER BY id', [
      runId,
    ]);
    return {
      ...runOf(rows[0]),
      tags: tags.rows.map((row) => ({
        tag: row.tag,
        outcome: row.outcome,
        ...(row.digest !== null && { digest: row.digest as Digest }),
        ...(row.reason !== null && { reason: row.reason }),
        ...(row.bytes !== null && { bytes: Number(row.bytes) }),
      })),
    };
  }

  async #mirrorOf(repository: string): Promise<{ mirror: Mirror; definition: MirrorDefinition }> {
    const mirror = await this.#mirrors.get(repository);
    const definition = await this.#mirrors.definition(repository);
    if (!mirror || !definition) throw notFound(`${repository} is not a mirror`);
    return { mirror, definition };
  }

  /**
   * Locks the mirror for the rest of the transaction, so only one start sees no run under way; refuses
   * while a run is queued or syncing within its lease, and ends one whose lease ran out.
   */
  async #clearTheWay(tx: Queryable, mirror: Mirror, definition: MirrorDefinition): Promise<void> {
    await tx.query('SELECT id FROM mirrors WHERE id = $1 FOR UPDATE', [mirror.id]);
    const { rows } = await tx.query<{
      id: string;
      state: MirrorRunState;
      dry_run: boolean;
      expired: boolean;
    }>(
      `SELECT id, state, dry_run, COALESCE(lease_expires_at < now(), true) AS expired
         FROM mirror_runs WHERE mirror_id = $1 AND state IN ('queued', 'syncing')`,
      [mirror.id],
    );
    const current = rows[0];
    if (!current) return;
    if (!current.expired) throw new MirrorBusyError(mirror.repository, Number(current.id));
    if (current.state === 'queued') {
      await tx.query(
        `UPDATE mirror_runs SET state = 'failed', finished_at = now(), error = $2, lease_expires_at = NULL,
           totals = '{}'
         WHERE id = $1`,
        [current.id, unstartedRunError(this.#queueTimeoutSeconds)],
      );
      return;
    }
    await this.#endAbandoned(tx, mirror, definition, Number(current.id), current.dry_run);
  }

  /** The mirror is syncing: its state, `last_run_at`, and `repo_mirror_sync_started`. */
  async #markStarted(
    tx: Queryable,
    mirror: Mirror,
    definition: MirrorDefinition,
    trigger: MirrorTrigger,
  ): Promise<void> {
    await tx.query(`UPDATE mirrors SET state = 'syncing', last_run_at = now() WHERE id = $1`, [mirror.id]);
    await this.#outbox.write(tx, 'repo_mirror_sync_started', subjectOfRepository(mirror.repository), {
      ...mirrorFields(definition),
      message: `${mirror.repository} started syncing from ${upstreamName(definition)} (${trigger})`,
    });
  }

  /** Runs the sync of a run that holds its lease, records the outcome, and returns the run. */
  async #execute(
    mirror: Mirror,
    definition: MirrorDefinition,
    runId: number,
    dryRun: boolean,
  ): Promise<MirrorRunDetails> {
    const controller = new AbortController();
    this.#running.add(controller);
    const watch = this.#watch(runId, controller);
    const recorder = new TagRecorder(this.#db, runId);
    let upstream: UpstreamClient | undefined;
    let result: MirrorSyncResult | null = null;
    let failure: unknown;
    try {
      upstream = upstreamClientOf(definition);
      result = await runMirrorSync(
        definition,
        { upstream, local: this.#local },
        {
          dryRun,
          concurrency: mirror.concurrency,
          bandwidthLimit: mirror.bandwidthLimit,
          signal: controller.signal,
          deleteMissing: { enabled: mirror.deleteMissing, maxDeletions: mirror.maxDeletions },
          onProgress: (tag) => recorder.add(tag),
          actor: mirror.robot,
          ...(this.#retry && { retry: this.#retry }),
        },
      );
    } catch (error) {
      failure = error;
    } finally {
      watch.stop();
      this.#running.delete(controller);
      await upstream?.close().catch(() => {});
    }
    const unrecorded = await recorder.flush();
    const end = endOf(result, failure, controller.signal, unrecorded);
    await this.#finish(mirror, definition, runId, dryRun, result, end);
    return (await this.runDetails(runId))!;
  }

  /** Marks failed a run whose lease expired, with the tags it had recorded. */
  async #endAbandoned(
    tx: Queryable,
    mirror: Mirror,
    definition: MirrorDefinition,
    runId: number,
    dryRun: boolean,
  ): Promise<void> {
    await tx.query(
      `UPDATE mirror_runs mr SET state = 'failed', finished_at = now(), error = $2, lease_owner = NULL,
         lease_expires_at = NULL, totals = ${recordedTotals}
       WHERE id = $1`,
      [runId, abandonedRunError],
    );
    if (dryRun) return;
    const { rows } = await tx.query<{ tag: string; outcome: TagOutcome; reason: string | null }>(
      'SELECT tag, outcome, reason FROM mirror_run_tags WHERE run_id = $1 ORDER BY id',
      [runId],
    );
    const tags = rows.map((row) => ({
      tag: row.tag,
      outcome: row.outcome,
      ...(row.reason !== null && { reason: row.reason }),
    }));
    await this.#outbox.write(tx, 'repo_mirror_sync_failed', subjectOfRepository(mirror.repository), {
      ...mirrorFields(definition),
      ...counts(tags),
      message: `run ${runId} of ${mirror.repository} failed: ${abandonedRunError}`,
    });
  }

  /** Renews the run's lease and watches for a cancel request until stopped; aborts the run on either. */
  #watch(runId: number, controller: AbortController): { stop(): void } {
    const renewal = setInterval(
      () => {
        this.#db
          .query<{ cancel_requested: boolean }>(
            `UPDATE mirror_runs SET lease_expires_at = now() + make_interval(secs => $3)
              WHERE id = $1 AND lease_owner = $2 AND state = 'syncing'
              RETURNING cancel_requested`,
            [runId, this.#owner, this.#leaseSeconds],
          )
          .then(({ rows }) => {
            // Gone: another process took the run over, so this one must stop writing.
            if (!rows[0] || rows[0].cancel_requested) controller.abort();
          })
          .catch(() => {});
      },
      (this.#leaseSeconds * 1000) / 3,
    );
    const poll = setInterval(() => {
      this.#db
        .query<{ cancel_requested: boolean }>('SELECT cancel_requested FROM mirror_runs WHERE id = $1', [
          runId,
        ])
        .then(({ rows }) => {
          if (rows[0]?.cancel_requested) controller.abort();
        })
        .catch(() => {});
    }, this.#cancelPollMs);
    renewal.unref();
    poll.unref();
    return {
      stop: () => {
        clearInterval(renewal);
        clearInterval(poll);
      },
    };
  }

  /** Ends the run, unless another process took it over meanwhile; then the mirror's state and the event. */
  async #finish(
    mirror: Mirror,
    definition: MirrorDefinition,
    runId: number,
    dryRun: boolean,
    result: MirrorSyncResult | null,
    end: RunEnd,
  ): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.query('SELECT id FROM mirrors WHERE id = $1 FOR UPDATE', [mirror.id]);
      const { rows } = await tx.query<{ tags: TagResult[] }>(
        `UPDATE mirror_runs mr SET state = $3, finished_at = now(), error = $4,
           totals = COALESCE($5::jsonb, ${recordedTotals}),
           bytes_copied = COALESCE($6, bytes_copied), lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2 AND state = 'syncing'
         RETURNING id`,
        [
          runId,
          this.#owner,
          end.state,
          end.error,
          result ? JSON.stringify(result.totals) : null,
          result?.bytesCopied ?? null,
        ],
      );
      if (rows.length === 0 || dryRun) return;
      await tx.query('UPDATE mirrors SET state = $2 WHERE id = $1', [mirror.id, end.state]);
      const subject = subjectOfRepository(mirror.repository);
      const fields = { ...mirrorFields(definition), ...counts(result?.tags ?? []) };
      if (end.state === 'success') {
        await this.#outbox.write(tx, 'repo_mirror_sync_success', subject, {
          ...fields,
          message: `${mirror.repository} synced from ${upstreamName(definition)}: ${fields.synced} copied, ${fields.skipped} up to date`,
        });
      } else {
        await this.#outbox.write(tx, 'repo_mirror_sync_failed', subject, {
          ...fields,
          message: `${mirror.repository} did not sync from ${upstreamName(definition)}: ${end.error ?? 'the sync was cancelled'}`,
        });
      }
    });
  }
}

interface RunEnd {
  state: Exclude<MirrorRunState, 'queued' | 'syncing'>;
  error: string | null;
}

function endOf(
  result: MirrorSyncResult | null,
  failure: unknown,
  signal: AbortSignal,
  unrecorded: unknown,
): RunEnd {
  if (signal.aborted && signal.reason === shutdownReason) return { state: 'failed', error: shutdownRunError };
  if (!result) {
    if (signal.aborted) return { state: 'cancelled', error: null };
    return { state: 'failed', error: messageOf(failure) };
  }
  if (result.cancelled) return { state: 'cancelled', error: null };
  const problems: string[] = [];
  const failed = result.totals.failed;
  if (failed > 0) problems.push(`${failed} ${failed === 1 ? 'tag' : 'tags'} failed`);
  if (result.deletions.status === 'refused') problems.push(`no tag was deleted: ${result.deletions.reason}`);
  if (unrecorded !== undefined) problems.push(`some tag results were not recorded: ${messageOf(unrecorded)}`);
  return problems.length > 0
    ? { state: 'failed', error: problems.join('; ') }
    : { state: 'success', error: null };
}

/** Writes each tag's result as it comes, one after the other. */
class TagRecorder {
  readonly #db: Queryable;
  readonly #runId: number;
  #chain: Promise<void> = Promise.resolve();
  #failure: unknown;

  constructor(db: Queryable, runId: number) {
    this.#db = db;
    this.#runId = runId;
  }

  add(result: TagResult): void {
    this.#chain = this.#chain.then(async () => {
      try {
        await this.#db.query(
          `WITH recorded AS (
             INSERT INTO mirror_run_tags (run_id, tag, outcome, digest, reason, bytes)
             VALUES ($1, $2, $3, $4, $5, $6::bigint))
           UPDATE mirror_runs SET bytes_copied = bytes_copied + COALESCE($6::bigint, 0) WHERE id = $1`,
          [
            this.#runId,
            result.tag,
            result.outcome,
            result.digest ?? null,
            result.reason ?? null,
            result.bytes ?? null,
          ],
        );
      } catch (error) {
        this.#failure ??= error;
      }
    });
  }

  /** Waits for the writes; the first error, if any failed. */
  async flush(): Promise<unknown> {
    await this.#chain;
    return this.#failure;
  }
}

function upstreamClientOf(definition: MirrorDefinition): UpstreamClient {
  const { url, tlsVerify, credentials } = definition.upstream;
  return new UpstreamClient({ url, tlsVerify, ...(credentials && { credentials }) });
}

/** The upstream repository as people write it, e.g. registry-1.docker.io/library/nginx. */
function upstreamName(definition: MirrorDefinition): string {
  return `${new URL(definition.upstream.url).host}/${definition.upstream.repository}`;
}

function mirrorFields(
  definition: MirrorDefinition,
): Pick<EventFields<'repo_mirror_sync_started'>, 'mirror_id' | 'upstream' | 'tag_filter'> {
  return {
    mirror_id: definition.name,
    upstream: upstreamName(definition),
    tag_filter: filterPatterns(definition.filter),
  };
}

/** The filter as a list of patterns: include globs, `!` exclude globs, `/regex/`, then semver and newest. */
function filterPatterns(filter: TagFilter): string[] {
  return [
    ...(filter.include.length > 0 ? filter.include : ['*']),
    ...filter.exclude.map((glob) => `!${glob}`),
    ...filter.regex.map((source) => `/${source}/`),
    ...(filter.semver === undefined ? [] : [`semver ${filter.semver}`]),
    ...(filter.newest === undefined ? [] : [`newest ${filter.newest}`]),
  ];
}

function counts(
  tags: readonly TagResult[],
): Pick<EventFields<'repo_mirror_sync_success'>, 'synced' | 'skipped' | 'failed' | 'failures'> {
  const totals = countOutcomes(tags);
  return {
    synced: totals.copied,
    skipped: totals.unchanged,
    failed: totals.failed,
    failures: tags
      .filter((tag) => tag.outcome === 'failed')
      .map((tag) => ({ tag: tag.tag, error: tag.reason ?? 'unknown' })),
  };
}

function runOf(row: RunRow): MirrorRun {
  const totals = countOutcomes([]);
  for (const [outcome, n] of Object.entries(row.totals ?? {})) totals[outcome as TagOutcome] = Number(n);
  return {
    id: Number(row.id),
    repository: row.repository,
    trigger: row.trigger,
    state: row.state,
    dryRun: row.dry_run,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    cancelRequested: row.cancel_requested,
    totals,
    bytesCopied: Number(row.bytes_copied),
    error: row.error,
  };
}
