import type { Registry } from 'prom-client';
import type { Database } from '../db/database.ts';
import { queuePrefix } from '../db/queue-prefix.ts';
import type { RedisConnection } from '../db/redis.ts';
import { DeliveryCommands } from './delivery-control.ts';
import { DeliveryLog } from './delivery-log.ts';
import { createDeliveryMetrics, type DeliveryMetrics } from './delivery-metrics.ts';
import { DeliveryQueue } from './delivery-queue.ts';
import { DeliveryWorker } from './delivery-worker.ts';
import { Dispatcher } from './dispatcher.ts';
import { HttpSender } from './http-sender.ts';
import type { EventsLogger } from './logger.ts';
import type { DeliveryControl } from './model.ts';
import type { Outbox } from './outbox.ts';
import { SubscriptionHealth } from './subscription-health.ts';
import type { SubscriptionStore } from './subscriptions.ts';
import { Sweeper } from './sweeper.ts';

/** The `events` section of the configuration; durations in seconds. */
export interface DeliverySettings {
  allowPrivateDestinations: boolean;
  timeout: number;
  retrySchedule: number[];
  retryJitter: number;
  disableAfterDeadDeliveries: number;
  concurrency: number;
  /** A delivery whose worker stopped renewing its lock this long ago goes to another worker. */
  stalledAfter: number;
}

export interface EventDeliveryDependencies {
  config: DeliverySettings;
  db: Database;
  redis: RedisConnection;
  outbox: Outbox;
  subscriptions: SubscriptionStore;
  metricsRegistry: Registry;
  /** The gateway's public URL, read at each attempt (it is known only once listening). */
  publicUrl: () => string;
}

/** Timings for the loops of one process; the defaults suit production, tests shorten them. */
export interface DeliveryRunOptions {
  logger: EventsLogger;
  pollIntervalMs?: number;
  /** How often to look for deliveries whose worker stopped; default half of `events.stalledAfter`. */
  stalledIntervalMs?: number;
  sweepIntervalMs?: number;
  /** How long a pending delivery may lack a job before the sweeper queues it again. */
  sweepGraceMs?: number;
}

/** The dispatcher, sweeper and worker running in this process. */
export interface RunningDelivery {
  /** Stops taking events and jobs, and waits for deliveries in flight. */
  stop(): Promise<void>;
}

/**
 * Event delivery: the queue and the API's controls, which every process has, and the loops that
 * dispatch and deliver, which run where `start` is called (`slipway serve` or `slipway worker`).
 */
export class EventDelivery {
  readonly control: DeliveryControl;
  readonly queue: DeliveryQueue;
  readonly #deps: EventDeliveryDependencies;
  readonly #log: DeliveryLog;
  readonly #metrics: DeliveryMetrics;
  #dispatcher: Dispatcher | undefined;

  private constructor(deps: EventDeliveryDependencies, queue: DeliveryQueue) {
    this.#deps = deps;
    this.queue = queue;
    this.#log = new DeliveryLog(deps.db);
    this.#metrics = createDeliveryMetrics(deps.metricsRegistry);
    this.control = new DeliveryCommands({ ...deps, log: this.#log, queue });
  }

  static async open(deps: EventDeliveryDependencies): Promise<EventDelivery> {
    const queue = new DeliveryQueue({
      redis: deps.redis,
      prefix: await queuePrefix(deps.db),
      attempts: deps.config.retrySchedule.length + 1,
    });
    return new EventDelivery(deps, queue);
  }

  /** An event was written: the dispatcher in this process, if any, looks soon. */
  wake(): void {
    this.#dispatcher?.wake();
  }

  start(options: DeliveryRunOptions): RunningDelivery {
    const { config, db, redis, subscriptions, outbox, publicUrl } = this.#deps;
    const { logger } = options;
    const lockDurationMs = Math.max(500, config.stalledAfter * 1000);
    const sender = new HttpSender({
      timeoutMs: config.timeout * 1000,
      allowPrivateDestinations: config.allowPrivateDestinations,
    });
    const worker = new DeliveryWorker({
      db,
      redis,
      prefix: this.queue.prefix,
      log: this.#log,
      subscriptions,
      health: new SubscriptionHealth({
        outbox,
        disableAfterDeadDeliveries: config.disableAfterDeadDeliveries,
      }),
      sender,
      metrics: this.#metrics,
      logger,
      publicUrl,
      retry: { schedule: config.retrySchedule, jitter: config.retryJitter },
      concurrency: config.concurrency,
      lockDurationMs,
      stalledIntervalMs: options.stalledIntervalMs ?? lockDurationMs / 2,
    });
    const dispatcher = new Dispatcher({
      db,
      log: this.#log,
      queue: this.queue,
      logger,
      ...(options.pollIntervalMs ? { pollIntervalMs: options.pollIntervalMs } : {}),
    });
    const sweeper = new Sweeper({
      log: this.#log,
      queue: this.queue,
      logger,
      intervalMs: options.sweepIntervalMs ?? 60_000,
      graceMs: options.sweepGraceMs ?? 60_000,
    });
    this.#dispatcher = dispatcher;
    dispatcher.start();
    sweeper.start();
    return {
      stop: async () => {
        if (this.#dispatcher === dispatcher) this.#dispatcher = undefined;
        await Promise.all([dispatcher.stop(), sweeper.stop()]);
        await worker.close();
        await sender.close();
      },
    };
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
