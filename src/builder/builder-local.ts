import { hostname } from 'node:os';
import { delimiter, join } from 'node:path';
import { accessSync, constants } from 'node:fs';
import type { RedisConnection } from '../db/redis.ts';
import type { EventsLogger } from '../events/logger.ts';
import { InProcessBuildControl, type BuilderHello } from './build-control.ts';
import type { BuildService } from './build-service.ts';
import { BuilderWorker } from './builder-worker.ts';
import { BuildahExecutor } from './executors/buildah.ts';

/** Whether `command` is an executable on PATH. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The builder inside `slipway serve` (builds.localBuilder): buildah from PATH, talking to the build
 * service directly. Null, with a warning, when buildah or git is missing.
 */
export async function startLocalBuilder(options: {
  buildService: BuildService;
  redis: RedisConnection;
  hello: () => BuilderHello;
  logger: EventsLogger;
  concurrency?: number;
}): Promise<BuilderWorker | null> {
  const missing = ['buildah', 'git'].filter((command) => !onPath(command));
  if (missing.length > 0) {
    options.logger.warn(
      { missing },
      `builds.localBuilder is on but ${missing.join(' and ')} is not on the PATH: this gateway runs no builds (install it, or run slipway builder elsewhere)`,
    );
    return null;
  }
  const worker = new BuilderWorker({
    name: `${hostname()}-local-${process.pid}`,
    control: new InProcessBuildControl(options.buildService, options.hello),
    redis: options.redis,
    executor: new BuildahExecutor(),
    executorName: 'buildah',
    concurrency: options.concurrency ?? 1,
    logger: options.logger,
  });
  await worker.start();
  return worker;
}
