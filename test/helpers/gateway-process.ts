import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A gateway running as its own process (`node bin/slipway.js serve`), so a test can SIGKILL it. */
export interface GatewayProcess {
  url: string;
  /** host:port, as registry clients write it. */
  host: string;
  port: number;
  dataDir: string;
  child: ChildProcess;
  /** What the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** SIGKILL: no shutdown hook runs, files are left as they are at that instant. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL if it does not exit within 10 s. */
  stop(): Promise<void>;
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * The environment without Slipway's configuration variables (DATABASE_URL, SLIPWAY_*, …), so the
 * gateway runs on its embedded defaults (PGlite and files under the data directory) or on its config
 * file, whatever the test run's environment holds; garbage collection off so nothing is removed behind
 * the test's back.
 */
function embeddedEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('SLIPWAY_') || key === 'DATABASE_URL' || key === 'REDIS_URL') continue;
    env[key] = value;
  }
  env.SLIPWAY_GC_ENABLED = 'false';
  env.SLIPWAY_AUTH_ENABLED = 'false';
  return env;
}

export interface SpawnGatewayOptions {
  /** The loopback port to listen on; a free one by default. */
  port?: number;
  /** A YAML (or JSON) configuration file, passed with `--config`. */
  configFile?: string;
}

/** Starts `slipway serve` on `dataDir` and waits until `/health/instance` answers. */
export async function spawnGateway(
  dataDir: string,
  { port, configFile }: SpawnGatewayOptions = {},
): Promise<GatewayProcess> {
  const listenPort = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [
      join(repositoryRoot, 'bin', 'slipway.js'),
      'serve',
      '--listen',
      `127.0.0.1:${listenPort}`,
      '--data',
      dataDir,
      '--log-level',
      'warn',
      ...(configFile === undefined ? [] : ['--config', configFile]),
    ],
    { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'pipe'], env: embeddedEnvironment() },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exitedFlag = true;
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${listenPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitedFlag)
      throw new Error(`slipway exited during start-up (exit code ${child.exitCode}):\n${output}`);
    try {
      const response = await fetch(`${url}/health/instance`);
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`slipway did not answer on ${url} within 60 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    host: `127.0.0.1:${listenPort}`,
    port: listenPort,
    dataDir,
    child,
    output: () => output,
    exited,
    async kill() {
      if (!exitedFlag) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (exitedFlag) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
