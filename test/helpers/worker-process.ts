import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A `slipway` command running as its own process, so a test can SIGKILL it mid-work. */
export interface SlipwayProcess {
  child: ChildProcess;
  /** What the process wrote to stdout and stderr so far. */
  output(): string;
  exited: Promise<void>;
  /** SIGKILL: nothing of the process's shutdown runs. */
  kill(): Promise<void>;
  /** SIGTERM: the process shuts down as it would when stopped by its supervisor; its exit code. */
  terminate(): Promise<number | null>;
}

/** `slipway worker` running as its own process, so a test can SIGKILL it mid-delivery. */
export type WorkerProcess = SlipwayProcess;

/**
 * Starts `node bin/slipway.js <args>` with only the given settings in its environment over this one
 * (the test run's own DATABASE_URL, REDIS_URL and SLIPWAY_* are left out).
 */
export function spawnSlipway(args: string[], settings: NodeJS.ProcessEnv): SlipwayProcess {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('SLIPWAY_') || key === 'DATABASE_URL' || key === 'REDIS_URL') continue;
    env[key] = value;
  }
  const child = spawn(process.execPath, [join(repositoryRoot, 'bin', 'slipway.js'), ...args], {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, ...settings },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output: () => output,
    exited,
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
    async terminate() {
      if (running()) child.kill('SIGTERM');
      await exited;
      return child.exitCode;
    },
  };
}

/** Starts `node bin/slipway.js worker <args>` as `spawnSlipway` does. */
export function spawnWorker(settings: Record<string, string>, args: string[] = []): WorkerProcess {
  return spawnSlipway(['worker', ...args], settings);
}
