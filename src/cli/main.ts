import { Command, Option } from 'commander';
import { loadConfig, type ConfigInput } from '../gateway/config.ts';
import { startServer } from '../gateway/server.ts';
import { createServices } from '../gateway/services.ts';
import { SlipwayError } from '../errors.ts';

interface ServeFlags {
  listen?: string;
  data?: string;
  config?: string;
  logLevel?: string;
}

function overridesFrom(flags: ServeFlags): ConfigInput {
  const overrides: Record<string, unknown> = {};
  if (flags.listen) overrides.listen = flags.listen;
  if (flags.data) overrides.dataDir = flags.data;
  if (flags.logLevel) overrides.logLevel = flags.logLevel;
  return overrides as ConfigInput;
}

const program = new Command('slipway')
  .description('Self-hosted container registry gateway')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the gateway: registry API, health and metrics (embedded database and storage by default)')
  .option('--listen <host:port>', 'address to listen on (env SLIPWAY_LISTEN; default 0.0.0.0:5000)')
  .option('--data <dir>', 'data directory for embedded database and blobs (env SLIPWAY_DATA; default ./data)')
  .option('--config <file>', 'YAML configuration file (env SLIPWAY_CONFIG)')
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
  .action(async (flags: ServeFlags) => {
    const config = await loadConfig({ file: flags.config, overrides: overridesFrom(flags) });
    const server = await startServer(config);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        server.app.log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      server.app.log.info({ signal }, 'shutting down: finishing requests in flight');
      const force = setTimeout(() => {
        server.app.log.warn('requests still in flight after the shutdown grace period: closing them');
        server.app.server.closeAllConnections();
      }, config.shutdownGrace * 1000);
      force.unref();
      server.close().then(
        () => process.exit(0),
        (error: unknown) => {
          server.app.log.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

program
  .command('gc')
  .description('run garbage collection once against the configured database and storage, then exit')
  .option('--data <dir>', 'data directory (env SLIPWAY_DATA)')
  .option('--config <file>', 'YAML configuration file (env SLIPWAY_CONFIG)')
  .action(async (flags: ServeFlags) => {
    const config = await loadConfig({ file: flags.config, overrides: overridesFrom(flags) });
    const services = await createServices(config);
    try {
      const report = await services.gc.run(services.gcPolicy);
      if (report === null) console.log('another process is collecting garbage right now; nothing done');
      else
        console.log(
          `removed ${report.manifests} untagged manifests, ${report.blobs} blobs (${report.bytes} bytes), ${report.uploads} abandoned uploads; ${report.orphans} of those blobs and uploads had no metadata (left by a crash)`,
        );
    } finally {
      await services.close();
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof SlipwayError) {
    console.error(`slipway: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
