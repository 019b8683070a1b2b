/** Starting, watching and stopping the registries under test, and the counting proxies in front of them. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDistribution as launchDistribution } from '../../test/helpers/distribution.ts';
import { freePort } from '../../test/helpers/gateway-process.ts';
import { waitForRegistry } from '../../test/helpers/registry-http.ts';
import type { ProxiedRequest } from './counting-proxy.ts';

export type ServerId = 'reference' | 'slipway';

export interface RunningServer {
  id: ServerId;
  label: string;
  version: string;
  base: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

export const distributionBinary = process.env.BENCH_DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';

function launch(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; logFile: string },
): ChildProcess {
  const log = createWriteStream(options.logFile);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  child.once('exit', () => log.end());
  return child;
}

/** Waits until the server's `/v2/` answers 200; its log's last lines tell why it did not. */
function waitReady(base: string, child: ChildProcess, logFile: string): Promise<void> {
  return waitForRegistry(base, {
    name: basename(logFile, '.log'),
    exited: () => child.exitCode !== null || child.signalCode !== null,
    output: () => tail(logFile),
    timeoutMs: 60_000,
  });
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    }));
}

/**
 * Starts `bin/slipway.js serve` of the checkout at `repoRoot`. `as` makes it stand in for the
 * reference (A/B runs of two Slipway checkouts); its data and log then get their own names.
 * `configYaml`, when given, is written next to the data directory and passed with `--config`.
 */
export async function startSlipway(
  repoRoot: string,
  workDir: string,
  as: ServerId = 'slipway',
  options: { configYaml?: string } = {},
): Promise<RunningServer> {
  const port = await freePort();
  const suffix = as === 'slipway' ? '' : `-${as}`;
  const dataDir = join(workDir, `slipway-data${suffix}`);
  const logFile = join(workDir, `slipway${suffix}.log`);
  const configArgs: string[] = [];
  if (options.configYaml !== undefined) {
    const configFile = join(workDir, `slipway${suffix}.yml`);
    await writeFile(configFile, options.configYaml);
    configArgs.push('--config', configFile);
  }
  const child = launch(
    process.execPath,
    [
      ...slipwayNodeArgs(),
      join(repoRoot, 'bin/slipway.js'),
      'serve',
      '--listen',
      `127.0.0.1:${port}`,
      '--data',
      dataDir,
      '--log-level',
      'warn',
      ...configArgs,
    ],
    { cwd: repoRoot, env: { ...process.env, SLIPWAY_GC_ENABLED: '0', SLIPWAY_AUTH_ENABLED: '0' }, logFile },
  );
  const base = `http://127.0.0.1:${port}`;
  const stop = stopper(child);
  try {
    await waitReady(base, child, logFile);
  } catch (error) {
    await stop();
    throw error;
  }
  const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version as string;
  const label = as === 'slipway' ? 'Slipway' : `Slipway@${basename(repoRoot)}`;
  return {
    id: as,
    label,
    version: `${version} (${gitDescribe(repoRoot)})`,
    base,
    pid: child.pid!,
    child,
    logFile,
    stop,
  };
}

/** Extra node flags for the Slipway process, e.g. BENCH_SLIPWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
function slipwayNodeArgs(): string[] {
  return (process.env.BENCH_SLIPWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

export interface DistributionOptions {
  /** Names its directory (config and storage) and log in the work directory (default `distribution`). */
  name?: string;
  label?: string;
  /** Proxy mode: a pull-through cache of the registry at this URL (read-only). */
  proxyRemoteUrl?: string;
}

export async function startDistribution(
  workDir: string,
  options: DistributionOptions = {},
): Promise<RunningServer> {
  if (!existsSync(distributionBinary)) {
    throw new Error(
      `${distributionBinary} not found: apt-get install -y docker-registry (or set BENCH_DISTRIBUTION_BIN)`,
    );
  }
  const name = options.name ?? 'distribution';
  const logFile = join(workDir, `${name}.log`);
  // Closest to Slipway's defaults: filesystem storage, in-memory blob descriptor cache, no auth,
  // no access log, no background jobs.
  const registry = await launchDistribution({
    binary: distributionBinary,
    dir: join(workDir, name),
    logFile,
    quiet: true,
    proxyRemoteUrl: options.proxyRemoteUrl,
  });
  return {
    id: 'reference',
    label: options.label ?? 'Distribution',
    version: distributionVersion(),
    base: registry.url,
    pid: registry.pid,
    child: registry.child,
    logFile,
    stop: registry.stop,
  };
}

/** A counting reverse proxy (`bench/lib/counting-proxy.ts`) in front of a registry. */
export interface CountingProxy {
  label: string;
  base: string;
  pid: number;
  logFile: string;
  /** Every request forwarded since the last reset. */
  requests(): Promise<ProxiedRequest[]>;
  reset(): Promise<void>;
  /** Paces the upstream's response bodies that start from now on to `bytesPerSec` (0: not paced). */
  setLinkRate(bytesPerSec: number): Promise<void>;
  stop(): Promise<void>;
}

const countingProxyScript = join(dirname(fileURLToPath(import.meta.url)), 'counting-proxy.ts');

/**
 * Starts a counting proxy to `target` in its own process; `name` names its log in the work directory.
 * `linkRate` (bytes/s) paces the upstream's response bodies from the start; `setLinkRate` changes it.
 */
export async function startCountingProxy(
  target: string,
  workDir: string,
  name: string,
  options: { linkRate?: number } = {},
): Promise<CountingProxy> {
  const logFile = join(workDir, `${name}.log`);
  const args = [countingProxyScript, target, ...(options.linkRate ? [String(options.linkRate)] : [])];
  const child = launch(process.execPath, args, { logFile });
  const stop = stopper(child);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (code) => reject(new Error(`counting proxy exited (${code}): ${tail(logFile)}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    await waitReady(base, child, logFile);
    const control = async (method: 'GET' | 'DELETE') => {
      const response = await fetch(`${base}/-/requests`, { method });
      if (response.status !== 200) throw new Error(`${name}: ${method} /-/requests gave ${response.status}`);
      return (await response.json()) as ProxiedRequest[];
    };
    return {
      label: name,
      base,
      pid: child.pid!,
      logFile,
      requests: () => control('GET'),
      reset: async () => void (await control('DELETE')),
      setLinkRate: async (bytesPerSec) => {
        const response = await fetch(`${base}/-/link-rate`, { method: 'PUT', body: String(bytesPerSec) });
        if (response.status !== 200)
          throw new Error(`${name}: PUT /-/link-rate gave ${response.status}: ${await response.text()}`);
        await response.arrayBuffer();
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export function distributionVersion(): string {
  try {
    const out = execFileSync(distributionBinary, ['--version'], { encoding: 'utf8' }).trim();
    return out.replace(/^\S+\s+\S+\s+/, '') || out; // "docker-registry github.com/docker/distribution 2.8.2+ds1"
  } catch {
    return 'unknown';
  }
}

function gitDescribe(repoRoot: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: repoRoot,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin'], {
      cwd: repoRoot,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

// ── /proc sampling ──────────────────────────────────────────────────────────────────────────────

const clockTicks = 100;

export interface ProcStatus {
  rssBytes: number;
  hwmBytes: number;
}

export function readStatus(pid: number): ProcStatus | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** CPU seconds (user + system, all threads) the process has used so far. */
export function readCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime, stime (fields 14 and 15)
  } catch {
    return 0;
  }
}

/**
 * Samples VmRSS of each server every `intervalMs`, keeping the maximum overall and per phase (the
 * phase is whatever the bench is doing, e.g. "blob-256m:slipway").
 */
export class MemorySampler {
  readonly #pids: Map<ServerId, number>;
  readonly #timer: NodeJS.Timeout;
  readonly maxRss = new Map<ServerId, number>();
  readonly phaseMax = new Map<string, Map<ServerId, number>>();
  phase = 'startup';

  constructor(pids: Map<ServerId, number>, intervalMs = 50) {
    this.#pids = pids;
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  sample(): void {
    let phase = this.phaseMax.get(this.phase);
    if (!phase) this.phaseMax.set(this.phase, (phase = new Map()));
    for (const [id, pid] of this.#pids) {
      const status = readStatus(pid);
      if (!status) continue;
      this.maxRss.set(id, Math.max(this.maxRss.get(id) ?? 0, status.rssBytes));
      phase.set(id, Math.max(phase.get(id) ?? 0, status.rssBytes));
    }
  }

  maxInPhases(id: ServerId, prefix: string): number | undefined {
    let max: number | undefined;
    for (const [phase, values] of this.phaseMax) {
      if (!phase.startsWith(prefix)) continue;
      const value = values.get(id);
      if (value !== undefined) max = Math.max(max ?? 0, value);
    }
    return max;
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}
