import { Worker, type Job } from 'bullmq';
import type { Database } from '../db/database.ts';
import type { RedisConnection } from '../db/redis.ts';
import type { AttemptOutcome, DeliveryLog, DeliveryTarget } from './delivery-log.ts';
import type { DeliveryMetrics } from './delivery-metrics.ts';
import { deliveryQueueName, type DeliveryJob, type DeliveryJobName } from './delivery-queue.ts';
import type { HttpSender } from './http-sender.ts';
import type { EventsLogger } from './logger.ts';
import type { DeliveryAttempt, Subscription } from './model.ts';
import type { SubscriptionHealth } from './subscription-health.ts';
import type { SubscriptionStore } from './subscriptions.ts';
import { deliveryRequest } from './webhook.ts';

export interface RetryPolicy {
  /** Seconds to wait before each retry: `events.retrySchedule`. */
  schedule: readonly number[];
  /** Each wait is shortened or lengthened at random by up to this fraction. */
  jitter: number;
}

/** The wait after the `failures`-th failed attempt, in milliseconds. */
export function retryDelayMs(policy: RetryPolicy, failures: number, random = Math.random): number {
  const base = policy.schedule[Math.min(failures, policy.schedule.length) - 1] ?? 0;
  return Math.max(0, Math.round(base * 1000 * (1 + policy.jitter * (2 * random() - 1))));
}

/** Thrown by an attempt that failed with retries left: BullMQ waits `delayMs`, as recorded in the log. */
class RetryLater extends Error {
  readonly delayMs: number;
  constructor(message: string, delayMs: number) {
    super(message);
    this.name = 'RetryLater';
    this.delayMs = delayMs;
  }
}

export interface DeliveryWorkerOptions {
  db: Database;
  redis: RedisConnection;
  prefix: string;
  log: DeliveryLog;
  subscriptions: SubscriptionStore;
  health: SubscriptionHealth;
  sender: HttpSender;
  metrics: DeliveryMetrics;
  logger: EventsLogger;
  publicUrl: () => string;
  retry: RetryPolicy;
  concurrency: number;
  /** How long a job's lock lives without renewal: a crashed worker's job is free again after this. */
  lockDurationMs: number;
  /** How often to look for jobs whose worker's lock lapsed, and take them over. */
  stalledIntervalMs: number;
}

/**
 * Takes delivery jobs and sends them. The database decides: a job whose delivery was replayed,
 * finished or deleted meanwhile does nothing; a delivery of a disabled subscription is skipped.
 */
export class DeliveryWorker {
  readonly #options: DeliveryWorkerOptions;
  readonly #worker: Worker<DeliveryJob, void, DeliveryJobName>;

  constructor(options: DeliveryWorkerOptions) {
    this.#options = options;
    this.#worker = new Worker<DeliveryJob, void, DeliveryJobName>(
      deliveryQueueName,
      (job) => this.#process(job),
      {
        connection: options.redis.connect(),
        prefix: options.prefix,
        concurrency: options.concurrency,
        lockDuration: options.lockDurationMs,
        stalledInterval: options.stalledIntervalMs,
        maxStalledCount: 2,
        settings: {
          // The wait an attempt recorded as next_attempt_at; the schedule for anything unforeseen.
          backoffStrategy: (failures, _type, error) =>
            error instanceof RetryLater ? error.delayMs : retryDelayMs(options.retry, failures),
        },
      },
    );
    this.#worker.on('error', (error) => options.logger.error({ err: error }, 'event delivery worker error'));
    this.#worker.on('failed', (job, error) => {
      if (!(error instanceof RetryLater)) {
        options.logger.warn({ err: error, deliveryId: job?.data.id }, 'event delivery job failed');
      }
    });
  }

  /** Waits for deliveries in flight (each bounded by `events.timeout`), then stops taking jobs. */
  close(): Promise<void> {
    return this.#worker.close();
  }

  async #process(job: Job<DeliveryJob, void, DeliveryJobName>): Promise<void> {
    const { log, subscriptions, sender, metrics } = this.#options;
    const target = await log.target(job.data.id);
    if (!target || target.status !== 'pending' || target.generation !== job.data.generation) return;
    const subscription = await subscriptions.get(target.subscriptionId);
    if (!subscription?.enabled) {
      if (await log.skip(target)) {
        metrics.deliveries.inc({ method: subscription?.method ?? 'webhook', outcome: 'skipped' });
      }
      return;
    }
    const request = deliveryRequest(subscription, target.payload, {
      deliveryId: target.id,
      publicUrl: this.#options.publicUrl(),
      now: new Date(),
    });
    const attempt = await sender.send(subscription.url, request);
    metrics.attemptSeconds.observe(
      { method: subscription.method, result: attempt.success ? 'success' : 'failure' },
      attempt.latencyMs / 1000,
    );
    const failures = job.attemptsMade + 1;
    const lastAttempt = failures >= (job.opts.attempts ?? 1);
    const delayMs = retryDelayMs(this.#options.retry, failures);
    const outcome: AttemptOutcome = attempt.success
      ? { status: 'delivered' }
      : lastAttempt || attempt.statusCode === 410
        ? { status: 'dead' }
        : { status: 'pending', retryAt: new Date(Date.now() + delayMs) };
    await this.#record(target, subscription, attempt, outcome);
    if (outcome.status === 'pending') throw new RetryLater(attempt.error ?? 'failed', delayMs);
  }

  async #record(
    target: DeliveryTarget,
    subscription: Subscription,
    attempt: DeliveryAttempt,
    outcome: AttemptOutcome,
  ): Promise<void> {
    const { db, log, health, metrics } = this.#options;
    const applied = await db.transaction(async (tx) => {
      if (!(await log.recordAttempt(tx, target, attempt, outcome))) return false;
      if (outcome.status === 'delivered') await health.delivered(tx, subscription.id);
      if (outcome.status === 'dead') {
        if (attempt.statusCode === 410) await health.gone(tx, subscription, attempt);
        else await health.dead(tx, subscription, attempt.error);
      }
      return true;
    });
    if (!applied || outcome.status === 'pending') return;
    metrics.deliveries.inc({ method: subscription.method, outcome: outcome.status });
    if (outcome.status === 'dead') metrics.deadLetters.inc({ method: subscription.method });
  }
}
