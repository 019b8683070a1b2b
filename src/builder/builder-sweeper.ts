import type { EventsLogger } from '../events/logger.ts';
import type { BuildService } from './build-service.ts';

export interface BuildSweepIntervals {
  /** How often builds nobody will finish are looked for. Default 15 s. */
  sweepMs?: number;
  /** How often ended builds past retention are deleted. Default 10 min. */
  retentionMs?: number;
}

/**
 * Runs `sweep()` every `sweepMs`: builds whose builder vanished, overdue builds and builds nobody took
 * end honestly; and `applyRetention()` every `retentionMs`: ended builds past retention are deleted.
 * Every gateway and worker runs one; the database decides which ends or deletes a build.
 */
export function scheduleBuildSweep(
  service: Pick<BuildService, 'sweep' | 'applyRetention'>,
  logger: EventsLogger,
  intervals: BuildSweepIntervals = {},
): () => void {
  const stopSweep = every(intervals.sweepMs ?? 15_000, async () => {
    const ended = await service
      .sweep()
      .catch((error: unknown) => logger.error({ err: error }, 'the build sweep failed; it runs again soon'));
    if (ended) logger.info({ ended }, 'ended builds that nobody will finish');
  });
  const stopRetention = every(intervals.retentionMs ?? 600_000, async () => {
    const deleted = await service
      .applyRetention()
      .catch((error: unknown) =>
        logger.error({ err: error }, 'deleting builds past retention failed; it runs again later'),
      );
    if (deleted) logger.info({ deleted }, 'deleted ended builds past retention');
  });
  return () => {
    stopSweep();
    stopRetention();
  };
}

/** Runs `work` every `intervalMs`, skipping a tick while the previous run is still going. */
function every(intervalMs: number, work: () => Promise<void>): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void work().finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
