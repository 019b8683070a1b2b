import { Queue, type JobsOptions } from 'bullmq';
import type { RedisConnection } from '../db/redis.ts';
import type { DeliveryRef } from './delivery-log.ts';

export const deliveryQueueName = 'event-delivery';

export type DeliveryJobName = 'deliver';

/** A job carries only the delivery's id and generation; everything else is read from the database. */
export type DeliveryJob = DeliveryRef;

/** The backoff type of delivery jobs; the worker's strategy reads `events.retrySchedule`. */
export const retryBackoffType = 'retry-schedule';

/** One job id per generation: the first is the delivery id, each replay gets its own. */
export function deliveryJobId(ref: DeliveryRef): string {
  return ref.generation === 0 ? ref.id : `${ref.id}-replay-${ref.generation}`;
}

/** The producer side: hands deliveries to BullMQ. The database stays the record of what happened. */
export class DeliveryQueue {
  readonly prefix: string;
  readonly #queue: Queue<DeliveryJob, void, DeliveryJobName>;
  readonly #attempts: number;

  constructor(options: { redis: RedisConnection; prefix: string; attempts: number }) {
    this.prefix = options.prefix;
    this.#attempts = options.attempts;
    this.#queue = new Queue(deliveryQueueName, { connection: options.redis.connect(), prefix: this.prefix });
  }

  /** Adds the job; a job with that id already in the queue makes this a no-op. */
  async enqueue(ref: DeliveryRef): Promise<void> {
    const options: JobsOptions = {
      jobId: deliveryJobId(ref),
      attempts: this.#attempts,
      backoff: { type: retryBackoffType },
      // The deliveries table is the log; finished jobs would only fill Redis.
      removeOnComplete: true,
      removeOnFail: true,
    };
    await this.#queue.add('deliver', { id: ref.id, generation: ref.generation }, options);
  }

  /** Enqueues the delivery unless its job is waiting, delayed or running; true when it was missing. */
  async ensureQueued(ref: DeliveryRef): Promise<boolean> {
    const jobId = deliveryJobId(ref);
    const state = await this.#queue.getJobState(jobId);
    if (state !== 'unknown' && state !== 'completed' && state !== 'failed') return false;
    // A finished job whose delivery is still pending ended without an outcome (it stalled too often).
    if (state !== 'unknown') await this.#queue.remove(jobId);
    await this.enqueue(ref);
    return true;
  }

  /** Drops a job that is no longer wanted (the delivery was replayed); a running one finishes as stale. */
  async discard(ref: DeliveryRef): Promise<void> {
    await this.#queue.remove(deliveryJobId(ref)).catch(() => 0);
  }

  close(): Promise<void> {
    return this.#queue.close();
  }
}
