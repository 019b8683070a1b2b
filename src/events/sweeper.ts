import type { DeliveryLog, OverdueCursor } from './delivery-log.ts';
import type { DeliveryQueue } from './delivery-queue.ts';
import type { EventsLogger } from './logger.ts';

export interface SweeperOptions {
  log: DeliveryLog;
  queue: DeliveryQueue;
  logger: EventsLogger;
  /** How often to sweep. */
  intervalMs: number;
  /** How long a pending delivery may go without a job before it counts as lost. */
  graceMs: number;
}

const pageSize = 200;

/**
 * Queues pending deliveries whose job is gone: Redis lost its data, the process died between the
 * dispatch commit and the enqueue, or a job stalled more often than BullMQ allows. Together with the
 * outbox, this is why no event is lost whatever happens to Redis or to a process. A job queued again
 * starts the retry schedule afresh: the attempts already made stay in the log.
 */
export class Sweeper {
  readonly #options: SweeperOptions;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<unknown> | undefined;

  constructor(options: SweeperOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => {
      this.#sweeping ??= this.sweep()
        .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'delivery sweep failed'))
        .finally(() => (this.#sweeping = undefined));
    }, this.#options.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping;
  }

  /** One pass over every overdue pending delivery; returns how many it queued again. */
  async sweep(): Promise<number> {
    const { log, queue, logger, graceMs } = this.#options;
    let requeued = 0;
    let after: OverdueCursor | null = null;
    for (;;) {
      const page = await log.overdue(graceMs, pageSize, after);
      const queued = await Promise.all(page.map((ref) => queue.ensureQueued(ref)));
      requeued += queued.filter(Boolean).length;
      if (page.length < pageSize) break;
      after = page[page.length - 1]!.cursor;
    }
    if (requeued > 0) logger.warn({ requeued }, 'queued again event deliveries whose jobs were lost');
    return requeued;
  }
}
