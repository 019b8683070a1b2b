import { Option } from 'commander';
import type { Config, ConfigInput } from '../gateway/config.ts';
import type { Services } from '../gateway/services.ts';

/** Flags of the commands that work on the gateway's own configuration rather than over the API. */
export interface LocalConfigFlags {
  listen?: string;
  data?: string;
  config?: string;
  logLevel?: string;
}

/** Defaults < YAML file < environment < these flags, as `slipway serve` reads them. */
export async function loadLocalConfig(flags: LocalConfigFlags): Promise<Config> {
  const overrides: Record<string, unknown> = {};
  if (flags.listen) overrides.listen = flags.listen;
  if (flags.data) overrides.dataDir = flags.data;
  if (flags.logLevel) overrides.logLevel = flags.logLevel;
  // Loaded here, not at start, so the commands that only call the API start fast.
  const { loadConfig } = await import('../gateway/config.ts');
  return loadConfig({ file: flags.config, overrides: overrides as ConfigInput });
}

/** Runs `task` with the gateway's services on the local configuration, closing them afterwards. */
export async function withLocalServices<T>(
  flags: LocalConfigFlags,
  task: (services: Services) => Promise<T>,
): Promise<T> {
  const config = await loadLocalConfig(flags);
  // Loaded here, not at start, so the commands that only call the API start fast.
  const { createServices } = await import('../gateway/services.ts');
  const services = await createServices(config);
  try {
    return await task(services);
  } finally {
    await services.close();
  }
}

export const dataFlag = ['--data <dir>', 'data directory (env SLIPWAY_DATA; default ./data)'] as const;
export const configFlag = ['--config <file>', 'YAML configuration file (env SLIPWAY_CONFIG)'] as const;

/** `--log-level`, for the commands that run a long-lived process. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'log level').choices([
    'fatal',
    'error',
    'warn',
    'info',
    'debug',
    'trace',
  ]);
}
