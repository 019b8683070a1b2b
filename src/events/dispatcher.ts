import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../db/database.ts';
import type { EventKind, EventPayload } from './catalog.ts';
import type { DeliveryLog } from './delivery-log.ts';
import type { DeliveryQueue } from './delivery-queue.ts';
import type { EventsLogger } from './logger.ts';
import { filterMatches } from './subscriptions.ts';

export interface DispatcherOptions {
  db: Database;
  log: DeliveryLog;
  queue: DeliveryQueue;
  logger: EventsLogger;
  /** How often to look for new events when nothing wakes it. */
  pollIntervalMs?: number;
  batchSize?: number;
}

interface EventRow {
  seq: number;
  id: string;
  kind: EventKind;
  namespace: string;
  repository: string | null;
  payload: EventPayload;
}

interface CandidateRow {
  id: string;
  namespace: string;
  repository: string | null;
  events: string[];
  filter: string | null;
}

/** After a wake, a short pause: the writer calls it before its transaction commits. */
const wakeDelayMs = 20;

/**
 * The outbox relay: takes undispatched events in `seq` order, creates one delivery per matching
 * enabled subscription and stamps the events dispatched, in one transaction, then queues the new
 * deliveries. Rows are claimed with FOR UPDATE SKIP LOCKED, so several processes can run it at once,
 * and a delivery is unique per (subscription, event), so a batch can never be fanned out twice.
 *
 * Ordering: one dispatcher queues a subscription's deliveries in event order, so their first attempts
 * usually start in that order. Nothing stronger is promised: events commit in a different order than
 * they take their `seq`, two dispatchers may each take a batch at once, workers run deliveries
 * concurrently, and a retry goes out after later deliveries. Receivers order by the payload's `time`
 * and drop duplicates by `webhook-id`.
 */
export class Dispatcher {
  readonly #options: DispatcherOptions;
  readonly #pollIntervalMs: number;
  readonly #batchSize: number;
  #running = false;
  #loop: Promise<void> | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeUp: (() => void) | undefined;
  #woken = false;

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#pollIntervalMs = options.pollIntervalMs ?? 500;
    this.#batchSize = options.batchSize ?? 100;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Looks for new events soon instead of at the next poll. */
  wake(): void {
    if (!this.#running || this.#wakeTimer) return;
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#woken = true;
      this.#wakeUp?.();
    }, wakeDelayMs);
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wakeUp?.();
    await this.#loop;
  }

  /** Dispatches one batch; returns how many events it took. */
  async dispatchBatch(): Promise<number> {
    const { db, queue, logger } = this.#options;
    const { events, deliveries } = await db.transaction((tx) => this.#fanOut(tx));
    for (const delivery of deliveries) {
      try {
        await queue.enqueue({ id: delivery, generation: 0 });
      } catch (error) {
        // The delivery is pending in the database: the sweeper queues it once Redis answers again.
        logger.warn({ err: error, deliveryId: delivery }, 'could not queue an event delivery; will retry');
      }
    }
    return events;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let taken = 0;
      try {
        taken = await this.dispatchBatch();
      } catch (error) {
        this.#options.logger.error({ err: error }, 'event dispatch failed; trying again shortly');
      }
      if (taken < this.#batchSize) await this.#idle();
    }
  }

  #idle(): Promise<void> {
    if (this.#woken || !this.#running) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeUp = undefined;
        this.#woken = false;
        resolve();
      };
      const timer = setTimeout(done, this.#pollIntervalMs);
      this.#wakeUp = done;
    });
  }

  async #fanOut(tx: Queryable): Promise<{ events: number; deliveries: string[] }> {
    const { rows: events } = await tx.query<EventRow>(
      `SELECT seq, id, kind, namespace, repository, payload FROM events
        WHERE dispatched_at IS NULL
        ORDER BY seq
        LIMIT $1
        FOR UPDATE SKIP LOCKED`,
      [this.#batchSize],
    );
    if (events.length === 0) return { events: 0, deliveries: [] };
    const candidates = await enabledSubscriptions(tx, [...new Set(events.map((e) => e.namespace))]);
    const wanted = events.flatMap((event) =>
      candidates
        .filter((subscription) => matches(subscription, event))
        .map((subscription) => ({ id: randomUUID(), subscriptionId: subscription.id, eventId: event.id })),
    );
    const inserted = await this.#options.log.insert(tx, wanted);
    await tx.query('UPDATE events SET dispatched_at = now() WHERE seq = ANY($1::bigint[])', [
      events.map((e) => e.seq),
    ]);
    return { events: events.length, deliveries: wanted.map((d) => d.id).filter((id) => inserted.has(id)) };
  }
}

async function enabledSubscriptions(tx: Queryable, namespaces: string[]): Promise<CandidateRow[]> {
  const { rows } = await tx.query<CandidateRow>(
    `SELECT s.id, ns.name AS namespace, r.name AS repository, s.events, s.filter
       FROM subscriptions s
       JOIN accounts ns ON ns.id = s.namespace_id
       LEFT JOIN repositories r ON r.id = s.repository_id
      WHERE s.enabled AND ns.name = ANY($1::text[])
      ORDER BY s.created_at, s.id`,
    [namespaces],
  );
  return rows;
}

/** Same namespace, the whole namespace or the event's repository, a kind it wants, and its filter. */
function matches(subscription: CandidateRow, event: EventRow): boolean {
  return (
    subscription.namespace === event.namespace &&
    (subscription.repository === null || subscription.repository === event.repository) &&
    subscription.events.includes(event.kind) &&
    filterMatches(subscription.filter, event.kind, filterSubject(event.payload))
  );
}

function filterSubject(payload: EventPayload): { tags?: string[]; ref?: string } {
  if (payload.kind === 'repo_push') return { tags: payload.updated_tags };
  if (payload.kind === 'repo_tag_deleted') return { tags: payload.deleted_tags };
  if ('trigger_metadata' in payload && payload.trigger_metadata) return { ref: payload.trigger_metadata.ref };
  return {};
}
