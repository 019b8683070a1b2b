import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisConnection } from '../db/redis.ts';
import type { EventsLogger } from '../events/logger.ts';
import type { BuildControl } from './build-control.ts';
import { buildQueueName, type BuildJob } from './build-queue.ts';
import { BuilderPresence } from './builder-presence.ts';
import { BuildRun } from './builder-run.ts';
import type { Executor, PullMirror } from './executors/index.ts';

export interface BuilderWorkerOptions {
  /** Unique among the builders of an installation: claims are held by name. */
  name: string;
  control: BuildControl;
  redis: RedisConnection;
  executor: Executor;
  /** How the executor is called in the builder's announcement, e.g. `buildah`. */
  executorName: string;
  concurrency: number;
  logger: EventsLogger;
  /** Verify the registry's TLS certificate; by default as the gateway's public URL says (https). */
  tlsVerify?: boolean;
  pullMirrors?: PullMirror[];
  /** Where checkouts go; default the system's temporary directory. */
  workDir?: string;
  git?: string;
}

/**
 * Takes build jobs from the `builds` queue, up to `concurrency` at once, and runs each build it
 * manages to claim. Stopping takes no more jobs and stops the running builds, which end
 * `internal_error` (the builder shut down) so that nobody waits for a claim to run out.
 */
export class BuilderWorker {
  readonly #options: BuilderWorkerOptions;
  readonly #running = new Map<string, BuildRun>();
  #worker: Worker<BuildJob, void, 'build'> | undefined;
  #presence: BuilderPresence | undefined;
  #logRedis: Redis | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: BuilderWorkerOptions) {
    this.#options = options;
  }

  get name(): string {
    return this.#options.name;
  }

  /** The builds running here now. */
  get running(): string[] {
    return [...this.#running.keys()];
  }

  async start(): Promise<void> {
    const { control, redis, concurrency, logger, name, executorName } = this.#options;
    const hello = await control.hello();
    const workDir = this.#options.workDir ?? join(tmpdir(), 'slipway-builder');
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    this.#logRedis = redis.connect();
    const startedAt = new Date().toISOString();
    this.#presence = new BuilderPresence({
      redis: this.#logRedis,
      prefix: hello.queuePrefix,
      name,
      announcement: () => ({ name, concurrency, executor: executorName, startedAt, running: this.running }),
    });
    await this.#presence.start();
    const context = {
      builder: name,
      control,
      executor: this.#options.executor,
      logRedis: this.#logRedis,
      logKeyPrefix: hello.logKeyPrefix,
      workDir,
      tlsVerify: this.#options.tlsVerify ?? hello.registryTls,
      pullMirrors: this.#options.pullMirrors ?? [],
      ...(this.#options.git && { git: this.#options.git }),
      warn: (fields: object, message: string) => logger.warn({ ...fields, builder: name }, message),
    };
    this.#worker = new Worker<BuildJob, void, 'build'>(
      buildQueueName,
      async (job: Job<BuildJob, void, 'build'>, token?: string) => {
        if (this.#stopping) {
          // Fetched as the builder began to stop: back to the queue, for another builder.
          await job.moveToDelayed(Date.now() + 1000, token);
          throw new DelayedError();
        }
        const assignment = await control.claim(job.data.buildId, name);
        if (!assignment) return; // cancelled while waiting, or another builder has it
        const run = new BuildRun(context, assignment);
        this.#running.set(run.buildId, run);
        void this.#presence?.announce().catch(() => {});
        logger.info(
          { build: run.buildId, repository: assignment.build.repository, builder: name },
          'build started',
        );
        try {
          await run.run();
        } finally {
          this.#running.delete(run.buildId);
          void this.#presence?.announce().catch(() => {});
        }
      },
      {
        connection: redis.connect(),
        prefix: hello.queuePrefix,
        concurrency,
        // The build's claim in the database, renewed by heartbeats, is what counts; BullMQ's lock is not.
        maxStalledCount: 0,
      },
    );
    this.#worker.on('error', (error) => logger.error({ err: error, builder: name }, 'builder worker error'));
    this.#worker.on('failed', (job, error) =>
      logger.error(
        { err: error, build: job?.data.buildId, builder: name },
        'a build job failed in the builder',
      ),
    );
  }

  /** Takes no more jobs; running builds stop and end `internal_error`. */
  stop(): Promise<void> {
    return (this.#stopping ??= (async () => {
      const closing = this.#worker?.close();
      for (const run of this.#running.values()) run.stop('shutdown');
      await closing;
      await this.#presence?.stop();
      this.#logRedis?.disconnect();
    })());
  }
}
