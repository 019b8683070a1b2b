import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { parseConfig, type ConfigInput } from '../../src/gateway/config.ts';
import { startServer, type RunningServer } from '../../src/gateway/server.ts';

export interface TestSlipway extends RunningServer {
  /** host:port, as registry clients write it. */
  host: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface TestSlipwayOptions {
  /** 'pglite' (default): embedded, in the temp dir. 'postgres': the run's PostgreSQL, in a fresh schema. */
  database?: 'pglite' | 'postgres';
  config?: ConfigInput;
}

/** Starts a gateway in this process on a random loopback port with its own temporary data directory. */
export async function startSlipway(options: TestSlipwayOptions = {}): Promise<TestSlipway> {
  const dataDir = await mkdtemp(join(tmpdir(), 'slipway-test-'));
  const database =
    options.database === 'postgres'
      ? { url: inject('databaseUrl'), schema: `t_${randomBytes(6).toString('hex')}` }
      : {};
  const config = parseConfig({
    listen: '127.0.0.1:0',
    dataDir,
    logLevel: 'warn',
    ...options.config,
    database: { ...database, ...options.config?.database },
    // Each gateway's installation id keeps its queues apart from the others' on the run's Redis.
    redis: { url: inject('redisUrl'), ...options.config?.redis },
    events: { allowPrivateDestinations: true, ...options.config?.events },
    gc: { enabled: false, ...options.config?.gc },
    // Mirror tests that want scheduled syncs start a worker; elsewhere a mirror must not sync by itself.
    mirrors: { worker: false, ...options.config?.mirrors },
    // Build tests run their own builders; elsewhere a build must stay waiting.
    builds: { localBuilder: false, ...options.config?.builds },
    // Registry-core tests run open; identity tests turn authentication on.
    auth: { enabled: false, ...options.config?.auth },
  });
  const server = await startServer(config);
  return {
    ...server,
    host: server.url.replace(/^http:\/\//, ''),
    dataDir,
    async stop() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
