import { Worker, type Job } from 'bullmq';
import type { RedisConnection } from '../../db/redis.ts';
import { RevisionFollower } from '../../db/revision-follower.ts';
import type { EventsLogger } from '../../events/logger.ts';
import { mirrorQueueName, type MirrorJob, type MirrorJobName, type MirrorQueue } from './mirror-queue.ts';
import { MirrorBusyError, type MirrorRunDetails, type MirrorRunner } from './mirror-runner.ts';
import type { MirrorStore } from './mirror-store.ts';

export interface MirrorWorkerOptions {
  redis: RedisConnection;
  queue: MirrorQueue;
  runner: MirrorRunner;
  mirrors: MirrorStore;
  logger: EventsLogger;
  /** Syncs at once in this process. */
  concurrency: number;
  /** How often to look for mirrors changed through other replicas. Default 5 s. */
  pollMs?: number;
  /** How often to make every scheduler match the mirrors again, changed or not. Default 5 min. */
  resyncMs?: number;
}

/**
 * Runs mirror syncs in this process (`slipway worker`, or `slipway serve` with `mirrors.worker`):
 * scheduled syncs as each mirror's job scheduler fires, and syncs asked for through the API. It also
 * keeps the job schedulers matching the mirrors table: at start, when a mirror changes, and every
 * few minutes (a Redis that keeps nothing may have restarted meanwhile).
 */
export class MirrorWorker {
  readonly #options: MirrorWorkerOptions;
  readonly #follower: RevisionFollower;
  #worker: Worker<MirrorJob, void, MirrorJobName> | undefined;
  #resync: NodeJS.Timeout | undefined;

  constructor(options: MirrorWorkerOptions) {
    this.#options = options;
    this.#follower = new RevisionFollower({
      revision: () => options.mirrors.revision(),
      reload: () => this.reconcile(),
      ...(options.pollMs !== undefined && { pollMs: options.pollMs }),
    });
  }

  async start(): Promise<void> {
    const { redis, queue, concurrency, logger } = this.#options;
    await this.#follower.start();
    this.#resync = setInterval(() => {
      this.reconcile().catch((error: unknown) =>
        logger.error({ err: error }, 'could not bring the mirror schedules up to date; trying again later'),
      );
    }, this.#options.resyncMs ?? 300_000);
    this.#resync.unref();
    this.#worker = new Worker<MirrorJob, void, MirrorJobName>(mirrorQueueName, (job) => this.#process(job), {
      connection: redis.connect(),
      prefix: queue.prefix,
      concurrency,
      // A sync may run for hours; its lease in the database, not BullMQ's lock, is what others respect.
      maxStalledCount: 0,
    });
    this.#worker.on('error', (error) => logger.error({ err: error }, 'mirror worker error'));
  }

  /** Stops taking syncs, and stops those running here (each ends failed, its progress kept). */
  async stop(): Promise<void> {
    this.#follower.stop();
    clearInterval(this.#resync);
    const closing = this.#worker?.close();
    this.#options.runner.stopRuns();
    await closing;
  }

  /** Makes every mirror's scheduler match its settings, and records each mirror's next run. */
  async reconcile(): Promise<void> {
    const { mirrors, queue } = this.#options;
    const next = await queue.reconcile(await mirrors.list());
    for (const [id, at] of next) await mirrors.setNextRun(id, at);
  }

  async #process(job: Job<MirrorJob, void, MirrorJobName>): Promise<void> {
    const { data } = job;
    const run =
      'runId' in data
        ? await this.#options.runner.runQueued(data.runId)
        : await this.#runScheduled(data.mirrorId);
    if (run) this.#report(run);
  }

  async #runScheduled(mirrorId: number): Promise<MirrorRunDetails | null> {
    const { mirrors, queue, runner, logger } = this.#options;
    const mirror = await mirrors.getById(mirrorId);
    // A scheduler left behind by a mirror deleted or disabled elsewhere; the next reconcile removes it.
    if (!mirror || !mirror.enabled) return null;
    await mirrors.setNextRun(mirror.id, await queue.nextRun(mirror.id));
    try {
      return await runner.run(mirror.repository, { trigger: 'schedule' });
    } catch (error) {
      if (!(error instanceof MirrorBusyError)) throw error;
      logger.info(
        { repository: mirror.repository, run: error.runId },
        'skipped a scheduled mirror sync: the previous run is still under way',
      );
      return null;
    }
  }

  #report(run: MirrorRunDetails): void {
    const fields = {
      repository: run.repository,
      run: run.id,
      trigger: run.trigger,
      dryRun: run.dryRun,
      totals: run.totals,
      bytes: run.bytesCopied,
    };
    if (run.state === 'failed') {
      this.#options.logger.warn({ ...fields, error: run.error }, 'mirror sync failed');
    } else {
      this.#options.logger.info({ ...fields, state: run.state }, 'mirror sync ended');
    }
  }
}
