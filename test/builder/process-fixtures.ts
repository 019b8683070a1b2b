import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface SlipwayProcess {
  output(): string;
  /** SIGKILL: nothing of the process's shutdown runs. */
  kill(): Promise<void>;
  /** SIGTERM; its exit code. */
  terminate(): Promise<number | null>;
}

/**
 * `node bin/slipway.js <args>` with the given variables over an environment without the test run's
 * own DATABASE_URL, REDIS_URL and SLIPWAY_*.
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
    output: () => output,
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

/** SIGKILLs the processes that have `marker` as an argument (left behind by a builder killed in a test). */
export async function killProcessesWithArgument(marker: string): Promise<void> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(marker)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
    } catch {
      // it has ended
    }
  }
}
