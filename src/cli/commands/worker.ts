import type { Command } from 'commander';
import { pino } from 'pino';
import { ConfigError } from '../../errors.ts';
import type { EventsLogger } from '../../events/logger.ts';
import {
  configFlag,
  dataFlag,
  loadLocalConfig,
  logLevelOption,
  type LocalConfigFlags,
} from '../local-config.ts';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'run mirror syncs and deliver events to webhooks and Slack, without serving HTTP (PostgreSQL and Redis shared with the gateways)',
    )
    .option(...dataFlag)
    .option(...configFlag)
    .addOption(logLevelOption())
    .action(async (flags: LocalConfigFlags) => {
      const config = await loadLocalConfig(flags);
      if (!config.database.url) {
        throw new ConfigError(
          'slipway worker needs PostgreSQL (DATABASE_URL or database.url): the embedded database belongs to the one process that opened it',
        );
      }
      // JSON lines, as the gateway's fastify logger writes them.
      const logger: EventsLogger = pino({ level: config.logLevel });
      // Loaded here, not at start, so the commands that only call the API start fast.
      const { createServices } = await import('../../gateway/services.ts');
      const services = await createServices(config);
      const delivery = services.eventDelivery.start({ logger });
      const mirrorWorker = await services.startMirrorWorker(logger);
      const { scheduleBuildSweep } = await import('../../builder/builder-sweeper.ts');
      const stopBuildSweep = scheduleBuildSweep(services.buildService, logger);
      logger.info(
        { database: services.db.kind, redis: services.redis.location },
        'slipway worker is running mirror syncs and delivering events',
      );
      if (!config.publicUrl) {
        logger.warn(
          {},
          'publicUrl is not set: Slack links and CloudEvents sources will name the listen address',
        );
      }
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down: finishing mirror syncs and deliveries in flight');
        stopBuildSweep();
        Promise.all([mirrorWorker.stop(), delivery.stop()])
          .then(() => services.close())
          .then(
            () => process.exit(0),
            (error: unknown) => {
              logger.error({ err: error }, 'shutdown failed');
              process.exit(1);
            },
          );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
