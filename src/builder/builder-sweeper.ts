import type { EventsLogger } from '../events/logger.ts';
import type { BuildService } from './build-service.ts';

/**
 * Runs `sweep()` every `intervalMs`: builds whose builder vanished, overdue builds and builds nobody
 * took end honestly. Every gateway and worker runs one; the database decides which ends a build.
 */
export function scheduleBuildSweep(
  service: Pick<BuildService, 'sweep'>,
  logger: EventsLogger,
  intervalMs = 15_000,
): () => void {
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    service
      .sweep()
      .then(
        (ended) => {
          if (ended > 0) logger.info({ ended }, 'ended builds that nobody will finish');
        },
        (error: unknown) => logger.error({ err: error }, 'the build sweep failed; it runs again soon'),
      )
      .finally(() => (sweeping = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
