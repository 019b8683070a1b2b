/**
 * What every bench entry script shares: starting the load generator and reading CPU time around its
 * measured part, waiting for a quiet machine, statistics, and stopping everything that was started,
 * also after a failure or Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { markers, type LoadSpec } from './loadgen.ts';
import { readCpuSeconds, tail, type RunningServer } from './servers.ts';

const loadgenScript = join(dirname(fileURLToPath(import.meta.url)), 'loadgen.ts');

export const MiB = 1024 * 1024;
export const MB = 1e6;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

// ── process bookkeeping: everything started here is stopped here, also on failure ────────────────

const loadChildren = new Set<ChildProcess>();
/** Servers whose log tails are printed when the bench fails. */
export const startedServers: RunningServer[] = [];
/** Run last-in first-out at the end: stop servers, remove directories. */
export const cleanups: Array<() => Promise<void> | void> = [];

async function cleanup(): Promise<void> {
  for (const child of loadChildren) child.kill('SIGKILL');
  while (cleanups.length > 0) {
    const step = cleanups.pop()!;
    try {
      await step();
    } catch (error) {
      console.error(`cleanup step failed: ${(error as Error).message}`);
    }
  }
}

/**
 * Runs `main`, then the cleanups, and exits: 0 on success, 1 on failure (with the last lines of every
 * started server's log), 130 on SIGINT or SIGTERM.
 */
export function runMain(main: () => Promise<void>): void {
  let exiting = false;
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      signalled = true;
      if (exiting) return;
      exiting = true;
      console.error(`\n${signal}: stopping servers and removing temporary files…`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  main().then(
    async () => {
      exiting = true;
      await cleanup();
      process.exit(0);
    },
    async (error: unknown) => {
      if (signalled) return; // the signal handler is already cleaning up and will exit
      exiting = true;
      console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
      for (const server of startedServers)
        console.error(`--- last lines of ${server.label}'s log:\n${tail(server.logFile)}`);
      await cleanup();
      process.exit(1);
    },
  );
}

// ── the load generator ─────────────────────────────────────────────────────────────────────────

export interface LoadRun<T> {
  result: T;
  /** CPU seconds each watched process used between the load generator's measure markers. */
  watchedCpuSec: number[];
  /** Wall seconds between the markers. */
  measuredSec: number;
  /** CPU seconds the whole machine was busy between the markers. */
  machineCpuSec: number;
}

/** Busy CPU seconds of the whole machine since boot (all CPUs, /proc/stat). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = v as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return (user + nice + system + irq + softirq + steal) / 100;
}

/**
 * Runs the load generator (`bench/lib/loadgen.ts`) in its own process; reads the CPU time of each of
 * `watchPids` around the measured part.
 */
export function runLoad<T>(spec: LoadSpec, watchPids: number[] = []): Promise<LoadRun<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [loadgenScript, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    loadChildren.add(child);
    let pending = '';
    let resultLine = '';
    let stderr = '';
    let cpuAtStart: number[] = [];
    let machineAtStart = 0;
    let timeAtStart = 0n;
    const watchedCpuSec = watchPids.map(() => 0);
    let machineCpuSec = 0;
    let measuredSec = 0;
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line === markers.start) {
          cpuAtStart = watchPids.map(readCpuSeconds);
          machineAtStart = machineBusySeconds();
          timeAtStart = process.hrtime.bigint();
        } else if (line === markers.end) {
          watchPids.forEach((pid, i) => (watchedCpuSec[i]! += readCpuSeconds(pid) - cpuAtStart[i]!));
          machineCpuSec += machineBusySeconds() - machineAtStart;
          measuredSec += Number(process.hrtime.bigint() - timeAtStart) / 1e9;
        } else if (line.trim()) resultLine = line;
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      loadChildren.delete(child);
      if (code !== 0)
        return reject(new Error(`load generator failed (${code}): ${stderr.trim().slice(-2000)}`));
      try {
        resolve({ result: JSON.parse(resultLine) as T, watchedCpuSec, measuredSec, machineCpuSec });
      } catch {
        reject(
          new Error(`load generator printed no result: ${resultLine.slice(-500)} ${stderr.slice(-500)}`),
        );
      }
    });
  });
}

// ── a quiet machine ────────────────────────────────────────────────────────────────────────────

/** How long to wait for other processes to go idle, and how that went. */
export const quietWait = { maxSec: 0, waitedSec: 0, gaveUp: 0 };

/**
 * On a shared machine, waits (up to `quietWait.maxSec` seconds) until the rest of the machine is idle
 * (under 0.25 busy cores over one second, servers idle) before a measurement starts.
 */
export async function waitForQuiet(): Promise<void> {
  if (quietWait.maxSec <= 0) return;
  const deadline = Date.now() + quietWait.maxSec * 1000;
  for (;;) {
    const before = machineBusySeconds();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = machineBusySeconds() - before;
    if (busy < 0.25) return;
    if (Date.now() > deadline) {
      quietWait.gaveUp++;
      return;
    }
    quietWait.waitedSec += 1;
  }
}

/** The note printed after the run when the bench had to wait, or gave up waiting. */
export function quietWaitNote(): string | undefined {
  if (quietWait.waitedSec === 0 && quietWait.gaveUp === 0) return undefined;
  return (
    `waited ${quietWait.waitedSec} s in all for other processes to go idle before measurements` +
    (quietWait.gaveUp
      ? `; ${quietWait.gaveUp} measurement(s) started anyway after ${quietWait.maxSec} s`
      : '')
  );
}

// ── CPU use ────────────────────────────────────────────────────────────────────────────────────

/** Average cores busy while a row was measured: the server, the load generator, and everything else. */
export interface CpuUse {
  server: number;
  client: number;
  other: number;
}

/** The first watched process is the server. `clientCpuSec` over `clientSec` is the load generator's share. */
export function cpuUse(load: LoadRun<unknown>, clientCpuSec: number, clientSec: number): CpuUse {
  const server = (load.watchedCpuSec[0] ?? 0) / load.measuredSec;
  const watched = sum(load.watchedCpuSec) / load.measuredSec;
  const client = clientCpuSec / clientSec;
  return { server, client, other: Math.max(0, load.machineCpuSec / load.measuredSec - watched - client) };
}

export function averageCpu(uses: CpuUse[]): CpuUse {
  return {
    server: mean(uses.map((u) => u.server)),
    client: mean(uses.map((u) => u.client)),
    other: mean(uses.map((u) => u.other)),
  };
}
