import type { Command } from 'commander';
import { configFlag, loadLocalConfig, logLevelOption, type LocalConfigFlags } from '../local-config.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'run the gateway: registry API, health and metrics (embedded database and storage by default)',
    )
    .option('--listen <host:port>', 'address to listen on (env SLIPWAY_LISTEN; default 0.0.0.0:5000)')
    .option(
      '--data <dir>',
      'data directory for embedded database and blobs (env SLIPWAY_DATA; default ./data)',
    )
    .option(...configFlag)
    .addOption(logLevelOption())
    .action(async (flags: LocalConfigFlags) => {
      const config = await loadLocalConfig(flags);
      // Loaded here, not at start, so the commands that only call the API start fast.
      const { startServer } = await import('../../gateway/server.ts');
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
}
