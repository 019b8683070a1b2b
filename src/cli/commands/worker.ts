import { Option, type Command } from 'commander';
import { ConfigError } from '../../errors.ts';
import type { EventsLogger } from '../../events/logger.ts';
import type { Config } from '../../gateway/config.ts';
import { configFlag, dataFlag, loadLocalConfig, type LocalConfigFlags } from '../local-config.ts';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'deliver events to webhooks and Slack, without serving HTTP (PostgreSQL and Redis shared with the gateways)',
    )
    .option(...dataFlag)
    .option(...configFlag)
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
      ]),
    )
    .action(async (flags: LocalConfigFlags) => {
      const config = await loadLocalConfig(flags);
      if (!config.database.url) {
        throw new ConfigError(
          'slipway worker needs PostgreSQL (DATABASE_URL or database.url): the embedded database belongs to the one process that opened it',
        );
      }
      const logger = jsonLogger(config.logLevel);
      // Loaded here, not at start, so the commands that only call the API start fast.
      const { createServices } = await import('../../gateway/services.ts');
      const services = await createServices(config);
      const delivery = services.eventDelivery.start({ logger });
      logger.info(
        { database: services.db.kind, redis: services.redis.location },
        'slipway worker is delivering events',
      );
      if (!config.publicUrl) {
        logger.warn(
          {},
          'publicUrl is not set: Slack links and CloudEvents sources will name the listen address',
        );
      }
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down: finishing deliveries in flight');
        delivery
          .stop()
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

const levels: Record<Config['logLevel'], number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/** JSON lines in pino's shape, as the gateway writes them, for a process without an HTTP app. */
function jsonLogger(level: Config['logLevel']): EventsLogger {
  const write = (value: number, fields: object, msg: string) => {
    if (value < levels[level]) return;
    const { err, ...rest } = fields as { err?: unknown };
    const error = err instanceof Error ? { type: err.name, message: err.message, stack: err.stack } : err;
    const line = {
      level: value,
      time: Date.now(),
      pid: process.pid,
      ...rest,
      ...(err ? { err: error } : {}),
      msg,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  return {
    info: (fields, msg) => write(levels.info, fields, msg),
    warn: (fields, msg) => write(levels.warn, fields, msg),
    error: (fields, msg) => write(levels.error, fields, msg),
  };
}
