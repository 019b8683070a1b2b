import { Queue, type RepeatOptions } from 'bullmq';
import type { RedisConnection } from '../../db/redis.ts';
import type { Mirror } from './mirror-store.ts';

export const mirrorQueueName = 'mirror-sync';

/** A scheduled sync names its mirror; a sync asked for names the queued run it starts. */
export type MirrorJob = { mirrorId: number } | { runId: number };
export type MirrorJobName = 'scheduled-sync' | 'queued-run';

type Schedule = Pick<RepeatOptions, 'every' | 'pattern' | 'tz' | 'startDate'>;

/** The BullMQ job scheduler of a mirror. */
export function schedulerIdOf(mirrorId: number): string {
  return `mirror-${mirrorId}`;
}

/**
 * The producer side of mirror syncs: one BullMQ job scheduler per enabled mirror (its interval, or its
 * cron expression in UTC, from its start time), and a job per sync asked for. The mirrors table is the
 * truth; `reconcile` makes the schedulers match it again (after a Redis that keeps nothing restarted).
 */
export class MirrorQueue {
  readonly prefix: string;
  // Job names are MirrorJobName; BullMQ types scheduler ids as job names too.
  readonly #queue: Queue<MirrorJob, void, string>;

  constructor(options: { redis: RedisConnection; prefix: string }) {
    this.prefix = options.prefix;
    this.#queue = new Queue(mirrorQueueName, { connection: options.redis.connect(), prefix: this.prefix });
  }

  /** Hands a queued run to the workers. */
  async startRun(runId: number): Promise<void> {
    await this.#queue.add(
      'queued-run' satisfies MirrorJobName,
      { runId },
      // The run's row is the record; a worker that dies mid-run leaves it to its lease.
      { jobId: `run-${runId}`, attempts: 1, removeOnComplete: true, removeOnFail: true },
    );
  }

  /**
   * Makes the mirror's scheduler match its settings: created or changed when it should run, removed
   * when it is disabled. An unchanged scheduler is left alone, so its next run stays where it was.
   * Answers when the mirror syncs next (null: not scheduled).
   */
  async schedule(mirror: Mirror): Promise<Date | null> {
    const id = schedulerIdOf(mirror.id);
    const wanted = scheduleOf(mirror);
    if (!wanted) {
      await this.#queue.removeJobScheduler(id);
      return null;
    }
    const current = await this.#queue.getJobScheduler(id);
    if (!current || !sameSchedule(current, wanted)) {
      await this.#queue.upsertJobScheduler(id, wanted, {
        name: 'scheduled-sync' satisfies MirrorJobName,
        data: { mirrorId: mirror.id },
        opts: { attempts: 1, removeOnComplete: true, removeOnFail: true },
      });
    }
    return this.nextRun(mirror.id);
  }

  /** Removes the mirror's scheduler (the mirror was deleted). */
  async unschedule(mirrorId: number): Promise<void> {
    await this.#queue.removeJobScheduler(schedulerIdOf(mirrorId));
  }

  /** When the mirror's scheduler runs next; null when it has none. */
  async nextRun(mirrorId: number): Promise<Date | null> {
    const scheduler = await this.#queue.getJobScheduler(schedulerIdOf(mirrorId));
    return scheduler?.next === undefined ? null : new Date(scheduler.next);
  }

  /**
   * Schedules every mirror as its settings say, and removes the schedulers of mirrors that no longer
   * exist. Answers each mirror's next run.
   */
  async reconcile(mirrors: readonly Mirror[]): Promise<Map<number, Date | null>> {
    const next = new Map<number, Date | null>();
    for (const mirror of mirrors) next.set(mirror.id, await this.schedule(mirror));
    const known = new Set(mirrors.map((mirror) => schedulerIdOf(mirror.id)));
    for (const scheduler of await this.#queue.getJobSchedulers(0, -1)) {
      const id = scheduler.id ?? scheduler.key;
      if (!known.has(id)) await this.#queue.removeJobScheduler(id);
    }
    return next;
  }

  close(): Promise<void> {
    return this.#queue.close();
  }
}

function scheduleOf(mirror: Mirror): Schedule | null {
  if (!mirror.enabled) return null;
  const startDate = mirror.startAt && mirror.startAt.getTime() > Date.now() ? mirror.startAt : undefined;
  const timing: Schedule =
    'cron' in mirror.schedule
      ? { pattern: mirror.schedule.cron, tz: 'UTC' }
      : { every: Math.round(mirror.schedule.interval * 1000) };
  return startDate ? { ...timing, startDate: startDate.getTime() } : timing;
}

function sameSchedule(
  current: { every?: number | undefined; pattern?: string | undefined; startDate?: number | undefined },
  wanted: Schedule,
): boolean {
  const wantedStart = wanted.startDate === undefined ? undefined : Number(wanted.startDate);
  return (
    Number(current.every ?? 0) === (wanted.every ?? 0) &&
    (current.pattern ?? null) === (wanted.pattern ?? null) &&
    // A start time that has passed no longer matters.
    (wantedStart === undefined || Number(current.startDate) === wantedStart)
  );
}
