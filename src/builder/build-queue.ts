import { Queue } from 'bullmq';
import type { RedisConnection } from '../db/redis.ts';

export const buildQueueName = 'builds';

/** A job names its build; everything else is read from the gateway when a builder claims it. */
export interface BuildJob {
  buildId: string;
}

/** The producer side of builds: one job per build, for any builder to take. */
export class BuildQueue {
  readonly prefix: string;
  readonly #queue: Queue<BuildJob, void, 'build'>;

  constructor(options: { redis: RedisConnection; prefix: string }) {
    this.prefix = options.prefix;
    this.#queue = new Queue(buildQueueName, { connection: options.redis.connect(), prefix: this.prefix });
  }

  async enqueue(buildId: string): Promise<void> {
    // The builds table is the record: a builder that vanishes is noticed by its heartbeats stopping.
    await this.#queue.add(
      'build',
      { buildId },
      { jobId: buildId, attempts: 1, removeOnComplete: true, removeOnFail: true },
    );
  }

  /** Drops a build's job that no builder took yet (the build was cancelled while waiting). */
  async discard(buildId: string): Promise<void> {
    await this.#queue.remove(buildId).catch(() => 0);
  }

  close(): Promise<void> {
    return this.#queue.close();
  }
}
