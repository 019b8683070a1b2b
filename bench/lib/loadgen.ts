/**
 * The load generator, run as its own process (`node bench/lib/loadgen.ts '<json spec>'`) so that it
 * never shares an event loop with the orchestrator's sampling, and so that both servers face the
 * same client in the same state. Prints one JSON result on stdout.
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import {
  mapLimit,
  pushBlobChunked,
  pushBlobMonolithic,
  sha256,
  sinkFetch,
  sinkHttp,
  type MonolithicFlow,
} from './oci-client.ts';

export interface AutocannonSpec {
  mode: 'autocannon';
  url: string;
  method: 'GET' | 'HEAD';
  connections: number;
  warmupSec: number;
  durationSec: number;
  headers?: Record<string, string>;
  /** Paths each connection cycles through, in order (e.g. the pages of a tag list). */
  paths?: string[];
}

export interface StreamSpec {
  mode: 'stream';
  url: string;
  parallel: number;
  reps: number;
  expectedBytes: number;
  client: StreamClient;
  /**
   * One unmeasured transfer first (default true). The pull-through bench turns it off: its cold
   * rows measure the very first GET of a blob.
   */
  warmup?: boolean;
}

/**
 * curl: one native process for all parallel streams (`curl -Z`), writing to /dev/null. It costs ~5×
 * less CPU per byte than a Node client on this machine, where the client shares 2 cores with the
 * server: with fetch both servers measure ~450 MB/s, which is the client's ceiling, not theirs.
 */
export type StreamClient = 'curl' | 'http' | 'fetch';

export interface PushSpec {
  mode: 'push';
  base: string;
  repository: string;
  kind: 'monolithic' | 'chunked';
  flow: MonolithicFlow;
  blobCount: number;
  blobSize: number;
  concurrency: number;
  chunkSize: number;
  reps: number;
  /** Makes content differ between calls, so nothing is ever deduplicated. */
  nonce: string;
}

export type LoadSpec = AutocannonSpec | StreamSpec | PushSpec;

export interface AutocannonResult {
  requestsPerSec: number;
  requestsTotal: number;
  bytesPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; mean: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSec: number;
  clientCpuSec: number;
}

export interface TimedRun {
  seconds: number;
  bytes: number;
  clientCpuSec: number;
  /** Each transfer's timing, where the client reports it (curl). */
  transfers?: Transfer[];
}

export interface Transfer {
  bytes: number;
  /** From the start of the transfer to the first response byte (curl's time_starttransfer). */
  firstByteSec?: number;
  totalSec?: number;
}

export interface RunsResult {
  runs: TimedRun[];
}

// autocannon ships no types; this is the part of its API used here.
interface AutocannonClient {
  parser: Record<number, (...args: unknown[]) => unknown>;
}
interface AutocannonOptions {
  url: string;
  method?: string;
  connections: number;
  duration: number;
  headers?: Record<string, string>;
  requests?: Array<{ method?: string; path?: string }>;
  setupClient?: (client: AutocannonClient) => void;
}
interface AutocannonRawResult {
  requests: { average: number; total: number };
  throughput: { average: number };
  latency: { p50: number; p90: number; p99: number; p99_9: number; mean: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: AutocannonOptions,
) => Promise<AutocannonRawResult>;

/** http-parser-js callbacks: kOnHeadersComplete returning true means "no body" (HEAD); kOnBody gets body slices. */
const kOnHeadersComplete = 2;
const kOnBody = 3;

/**
 * The measured part of a load run is framed by these lines on stdout, so the orchestrator reads the
 * server's CPU time exactly around it (not around warm-up or content preparation).
 */
export const markers = { start: '#measure-start', end: '#measure-end' } as const;

function mark(marker: string): void {
  process.stdout.write(`${marker}\n`);
}

async function runAutocannon(spec: AutocannonSpec): Promise<AutocannonResult> {
  const options = (duration: number): AutocannonOptions => ({
    url: spec.url,
    method: spec.method,
    connections: spec.connections,
    duration,
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(spec.paths ? { requests: spec.paths.map((path) => ({ method: spec.method, path })) } : {}),
    // autocannon appends every body slice to a string (a UTF-8 decode per slice): 1 MiB bodies would
    // make the client, not the server, the bottleneck. Nothing here checks bodies, so drop them. And
    // it would wait for Content-Length bytes after a HEAD response: tell its parser there are none.
    // (Its constructor installs the parser callbacks after setupClient, hence nextTick.)
    setupClient: (client: AutocannonClient) => {
      process.nextTick(() => {
        client.parser[kOnBody] = () => {};
        if (spec.method === 'HEAD') {
          const original = client.parser[kOnHeadersComplete]!;
          client.parser[kOnHeadersComplete] = (...args: unknown[]) => {
            original(...args);
            return true;
          };
        }
      });
    },
  });
  if (spec.warmupSec > 0) await autocannon(options(spec.warmupSec));
  const cpu = process.cpuUsage();
  mark(markers.start);
  const raw = await autocannon(options(spec.durationSec));
  mark(markers.end);
  const used = process.cpuUsage(cpu);
  return {
    requestsPerSec: raw.requests.average,
    requestsTotal: raw.requests.total,
    bytesPerSec: raw.throughput.average,
    latencyMs: {
      p50: raw.latency.p50,
      p90: raw.latency.p90,
      p99: raw.latency.p99,
      p999: raw.latency.p99_9,
      mean: raw.latency.mean,
      max: raw.latency.max,
    },
    non2xx: raw.non2xx,
    errors: raw.errors,
    timeouts: raw.timeouts,
    durationSec: raw.duration,
    clientCpuSec: (used.user + used.system) / 1e6,
  };
}

/** CPU seconds of this process and of its waited-for children (curl). */
function cpuWithChildren(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return (f[11]! + f[12]! + f[13]! + f[14]!) / 100; // utime stime cutime cstime
}

/** `parallel` transfers of `url` in one curl process, bodies to /dev/null; the bytes and times of each. */
function curlStreams(url: string, parallel: number): Promise<Transfer[]> {
  const args = ['--silent', '--show-error', '--fail', '--http1.1'];
  if (parallel > 1) args.push('--parallel', '--parallel-immediate', '--parallel-max', String(parallel));
  for (let i = 0; i < parallel; i++)
    args.push(
      '--output',
      '/dev/null',
      '--write-out',
      '%{size_download} %{time_starttransfer} %{time_total}\\n',
      url,
    );
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`curl exited ${code}: ${err.trim()}`));
      resolve(
        out
          .trim()
          .split('\n')
          .map((line) => {
            const [bytes, firstByteSec, totalSec] = line.split(' ').map(Number) as [number, number, number];
            return { bytes, firstByteSec, totalSec };
          }),
      );
    });
  });
}

async function runStreams(spec: StreamSpec): Promise<RunsResult> {
  const transfer =
    spec.client === 'curl'
      ? (parallel: number) => curlStreams(spec.url, parallel)
      : async (parallel: number): Promise<Transfer[]> => {
          const sink = spec.client === 'fetch' ? sinkFetch : sinkHttp;
          const counts = await Promise.all(Array.from({ length: parallel }, () => sink(spec.url)));
          return counts.map((bytes) => ({ bytes }));
        };
  if (spec.warmup ?? true) await transfer(1); // warm: page cache, connection pool, code paths
  const runs: TimedRun[] = [];
  mark(markers.start);
  for (let rep = 0; rep < spec.reps; rep++) {
    const cpu = cpuWithChildren();
    const start = performance.now();
    const transfers = await transfer(spec.parallel);
    const seconds = (performance.now() - start) / 1000;
    const used = cpuWithChildren() - cpu;
    for (const { bytes } of transfers) {
      if (bytes !== spec.expectedBytes)
        throw new Error(`stream returned ${bytes} bytes, expected ${spec.expectedBytes}`);
    }
    if (transfers.length !== spec.parallel)
      throw new Error(`${transfers.length} transfers finished, expected ${spec.parallel}`);
    runs.push({
      seconds,
      bytes: transfers.reduce((a, t) => a + t.bytes, 0),
      clientCpuSec: used,
      ...(spec.client === 'curl' ? { transfers } : {}),
    });
  }
  mark(markers.end);
  return { runs };
}

async function runPushes(spec: PushSpec): Promise<RunsResult> {
  const pool = Buffer.allocUnsafe(spec.blobCount * spec.blobSize);
  const runs: TimedRun[] = [];
  for (let rep = 0; rep < spec.reps; rep++) {
    // Fresh random content and digests, prepared before the clock starts.
    randomFillSync(pool);
    const blobs = Array.from({ length: spec.blobCount }, (_, i) => {
      const data = pool.subarray(i * spec.blobSize, (i + 1) * spec.blobSize);
      data.write(`${spec.nonce}/${rep}/${i}/`, 0, 'latin1');
      return { data, digest: sha256(data) };
    });
    const cpu = process.cpuUsage();
    mark(markers.start);
    const start = performance.now();
    await mapLimit(blobs, spec.concurrency, async ({ data, digest }) => {
      if (spec.kind === 'monolithic')
        await pushBlobMonolithic(spec.base, spec.repository, data, digest, spec.flow);
      else await pushBlobChunked(spec.base, spec.repository, data, digest, spec.chunkSize);
    });
    const seconds = (performance.now() - start) / 1000;
    mark(markers.end);
    const used = process.cpuUsage(cpu);
    runs.push({
      seconds,
      bytes: spec.blobCount * spec.blobSize,
      clientCpuSec: (used.user + used.system) / 1e6,
    });
  }
  return { runs };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  let result: AutocannonResult | RunsResult;
  switch (spec.mode) {
    case 'autocannon':
      result = await runAutocannon(spec);
      break;
    case 'stream':
      result = await runStreams(spec);
      break;
    case 'push':
      result = await runPushes(spec);
      break;
    default:
      throw new Error(`unknown load mode ${(spec as { mode: string }).mode}`);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.main) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
