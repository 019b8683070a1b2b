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
 * service directly. Null when buildah or git is missing: with a warning when it was asked for, with a
 * note when it was only to run if it could (`auto`).
 */
export async function startLocalBuilder(options: {
  buildService: BuildService;
  redis: RedisConnection;
  hello: () => BuilderHello;
  logger: EventsLogger;
  wanted: true | 'auto';
  buildah?: { isolation?: string; storageDriver?: string };
  concurrency?: number;
}): Promise<BuilderWorker | null> {
  const missing = ['buildah', 'git'].filter((command) => !onPath(command));
  if (missing.length > 0) {
    const what = `${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not on the PATH`;
    if (options.wanted === true) {
      options.logger.warn(
        { missing },
        `builds.localBuilder is on but ${what}: this gateway runs no builds (install it, or run slipway builder elsewhere)`,
      );
    } else {
      options.logger.info({ missing }, `no local builder: ${what}; builds wait for a slipway builder`);
    }
    return null;
  }
  const worker = new BuilderWorker({
    name: `${hostname()}-local-${process.pid}`,
    control: new InProcessBuildControl(options.buildService, options.hello),
    redis: options.redis,
    executor: new BuildahExecutor(options.buildah ?? {}),
    executorName: 'buildah',
    concurrency: options.concurrency ?? 1,
    logger: options.logger,
  });
  await worker.start();
  return worker;
}
