import type { Database, Queryable } from '../db/database.ts';
import { isUuid } from '../db/uuid.ts';
import { invalid } from '../errors.ts';
import type { EventKind, EventPayload } from './catalog.ts';
import type { Delivery, DeliveryAttempt, DeliveryPage, DeliveryStatus } from './model.ts';

/** A delivery as its queue job knows it: the job carries the id and generation it was made for. */
export interface DeliveryRef {
  id: string;
  generation: number;
}

/** What the worker needs to send a delivery. */
export interface DeliveryTarget extends DeliveryRef {
  subscriptionId: string;
  status: DeliveryStatus;
  payload: EventPayload;
}

/** Where a sweep of overdue deliveries goes on from. */
export interface OverdueCursor {
  queuedAt: string;
  id: string;
}

/** How an attempt leaves its delivery: done, dead, or waiting for a retry at a time. */
export type AttemptOutcome =
  { status: 'delivered' } | { status: 'dead' } | { status: 'pending'; retryAt: Date };

interface DeliveryRow {
  id: string;
  subscription_id: string;
  event_id: string;
  event_kind: EventKind;
  status: DeliveryStatus;
  attempts: number;
  generation: number;
  next_attempt_at: Date | null;
  created_at: Date;
  finished_at: Date | null;
  payload: EventPayload;
}

interface AttemptRow {
  delivery_id: string;
  attempted_at: Date;
  status_code: number | null;
  latency_ms: number;
  success: boolean;
  error: string | null;
  response_excerpt: string | null;
}

const selectDeliveries = `
  SELECT d.id, d.subscription_id, d.event_id, e.kind AS event_kind, d.status, d.attempts, d.generation,
         d.next_attempt_at, d.created_at, d.finished_at, e.payload
    FROM deliveries d
    JOIN events e ON e.id = d.event_id`;

/** A delivery is still this generation's and not finished: the guard on every change an attempt makes. */
const stillPending = 'id = $1 AND generation = $2 AND status = $3';

/** The deliveries table and its attempts: what went where, how each attempt went, and what is left. */
export class DeliveryLog {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Inserts deliveries that do not exist yet (one per subscription and event); returns the new ids. */
  async insert(
    tx: Queryable,
    deliveries: Array<{ id: string; subscriptionId: string; eventId: string }>,
  ): Promise<Set<string>> {
    if (deliveries.length === 0) return new Set();
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO deliveries (id, subscription_id, event_id)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[])
       ON CONFLICT (subscription_id, event_id) DO NOTHING
       RETURNING id`,
      [
        deliveries.map((d) => d.id),
        deliveries.map((d) => d.subscriptionId),
        deliveries.map((d) => d.eventId),
      ],
    );
    return new Set(rows.map((r) => r.id));
  }

  async get(id: string): Promise<Delivery | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.#db.query<DeliveryRow>(`${selectDeliveries} WHERE d.id = $1`, [id]);
    return (await this.#withAttempts(rows))[0] ?? null;
  }

  /** Newest first; `before` is the id of the last delivery of the previous page. */
  async list(
    subscriptionId: string,
    options: { limit: number; before?: string | undefined; status?: DeliveryStatus | undefined },
  ): Promise<DeliveryPage> {
    if (options.before !== undefined && !isUuid(options.before)) {
      throw invalid('before must be the next value of a previous page');
    }
    const { rows } = await this.#db.query<DeliveryRow>(
      `${selectDeliveries}
        WHERE d.subscription_id = $1
          AND ($2::text IS NULL OR d.status = $2)
          AND ($3::uuid IS NULL OR (d.created_at, d.id) < (SELECT created_at, id FROM deliveries WHERE id = $3))
        ORDER BY d.created_at DESC, d.id DESC
        LIMIT $4`,
      [subscriptionId, options.status ?? null, options.before ?? null, options.limit + 1],
    );
    const items = await this.#withAttempts(rows.slice(0, options.limit));
    return rows.length > options.limit ? { items, next: items[items.length - 1]!.id } : { items };
  }

  async target(id: string): Promise<DeliveryTarget | null> {
    const { rows } = await this.#db.query<DeliveryRow>(`${selectDeliveries} WHERE d.id = $1`, [id]);
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id,
      generation: row.generation,
      subscriptionId: row.subscription_id,
      status: row.status,
      payload: row.payload,
    };
  }

  /**
   * Records an attempt and what it leaves the delivery as. Returns false, changing only the log, when
   * the delivery was replayed or finished meanwhile (a duplicate job): its outcome is not this one's.
   */
  async recordAttempt(
    tx: Queryable,
    ref: DeliveryRef,
    attempt: DeliveryAttempt,
    outcome: AttemptOutcome,
  ): Promise<boolean> {
    await tx.query(
      `INSERT INTO delivery_attempts
         (delivery_id, attempted_at, status_code, latency_ms, success, error, response_excerpt)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        ref.id,
        attempt.attemptedAt,
        attempt.statusCode,
        attempt.latencyMs,
        attempt.success,
        attempt.error,
        attempt.responseExcerpt,
      ],
    );
    const retryAt = outcome.status === 'pending' ? outcome.retryAt : null;
    const { rowCount } = await tx.query(
      `UPDATE deliveries
          SET attempts = attempts + 1, status = $4, next_attempt_at = $5,
              finished_at = CASE WHEN $4 = 'pending' THEN NULL ELSE now() END
        WHERE ${stillPending}`,
      [ref.id, ref.generation, 'pending', outcome.status, retryAt],
    );
    return rowCount > 0;
  }

  /** The subscription was disabled before the delivery went out. */
  async skip(ref: DeliveryRef): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      `UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL, finished_at = now()
        WHERE ${stillPending}`,
      [ref.id, ref.generation, 'pending'],
    );
    return rowCount > 0;
  }

  /** Makes a delivery pending again as a new generation, for a replay; null when it does not exist. */
  async reopen(id: string): Promise<DeliveryRef | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.#db.query<{ generation: number }>(
      `UPDATE deliveries
          SET status = 'pending', generation = generation + 1, next_attempt_at = NULL,
              finished_at = NULL, queued_at = now()
        WHERE id = $1
        RETURNING generation`,
      [id],
    );
    return rows[0] ? { id, generation: rows[0].generation } : null;
  }

  /**
   * Pending deliveries that should be in the queue by now: handed to it more than `graceMs` ago and
   * not waiting for a retry that is yet to come. Paged by `after`, in the order they were queued.
   */
  async overdue(
    graceMs: number,
    limit: number,
    after: OverdueCursor | null,
  ): Promise<Array<DeliveryRef & { cursor: OverdueCursor }>> {
    // queued_at goes back and forth as text: a Date would drop its microseconds and page forever.
    const { rows } = await this.#db.query<{ id: string; generation: number; queued_at: string }>(
      `SELECT id, generation, queued_at::text AS queued_at FROM deliveries
        WHERE status = 'pending'
          AND queued_at < now() - $1::float8 * interval '1 millisecond'
          AND (next_attempt_at IS NULL OR next_attempt_at < now() - $1::float8 * interval '1 millisecond')
          AND ($2::timestamptz IS NULL OR (queued_at, id) > ($2, $3::uuid))
        ORDER BY queued_at, id
        LIMIT $4`,
      [graceMs, after?.queuedAt ?? null, after?.id ?? null, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      generation: r.generation,
      cursor: { queuedAt: r.queued_at, id: r.id },
    }));
  }

  async #withAttempts(rows: DeliveryRow[]): Promise<Delivery[]> {
    if (rows.length === 0) return [];
    const { rows: attempts } = await this.#db.query<AttemptRow>(
      `SELECT delivery_id, attempted_at, status_code, latency_ms, success, error, response_excerpt
         FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY id`,
      [rows.map((r) => r.id)],
    );
    return rows.map((row) => ({
      id: row.id,
      subscriptionId: row.subscription_id,
      eventId: row.event_id,
      eventKind: row.event_kind,
      status: row.status,
      attempts: row.attempts,
      nextAttemptAt: row.next_attempt_at,
      createdAt: row.created_at,
      finishedAt: row.finished_at,
      attemptLog: attempts.filter((a) => a.delivery_id === row.id).map(toAttempt),
      payload: row.payload,
    }));
  }
}

function toAttempt(row: AttemptRow): DeliveryAttempt {
  return {
    attemptedAt: row.attempted_at,
    statusCode: row.status_code,
    latencyMs: row.latency_ms,
    success: row.success,
    error: row.error,
    responseExcerpt: row.response_excerpt,
  };
}
