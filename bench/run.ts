/**
 * Slipway vs the reference registry (CNCF Distribution), side by side in one run, on the same data,
 * over loopback. See bench/README.md.
 *
 *   node bench/run.ts                    full run (a few minutes)
 *   node bench/run.ts --quick            smoke run (well under a minute)
 *   node bench/run.ts --rows manifest-get,tags
 *   node bench/run.ts --help
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MB,
  MiB,
  averageCpu,
  cleanups,
  cpuUse,
  mean,
  median,
  quietWait,
  quietWaitNote,
  runLoad,
  runMain,
  startedServers,
  waitForQuiet,
  type CpuUse,
  type LoadRun,
} from './lib/harness.ts';
import {
  type StreamClient,
  type AutocannonResult,
  type AutocannonSpec,
  type LoadSpec,
  type PushSpec,
  type RunsResult,
  type StreamSpec,
} from './lib/loadgen.ts';
import {
  getJson,
  manifestAccept,
  mapLimit,
  mediaTypes,
  probeMonolithicFlow,
  pushBlobMonolithic,
  putManifest,
  sha256,
  type MonolithicFlow,
} from './lib/oci-client.ts';
import { formatCpuTable, formatResultsTable, type Row, type Target } from './lib/report.ts';
import {
  MemorySampler,
  readStatus,
  startDistribution,
  startSlipway,
  type RunningServer,
  type ServerId,
} from './lib/servers.ts';
import { benchBuilds } from './builds.ts';
import { benchMirror } from './mirror.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);
const trivialServerScript = join(benchDir, 'lib/trivial-server.ts');

// ── options ─────────────────────────────────────────────────────────────────────────────────────

const groups = [
  'calibrate',
  'manifest-get',
  'manifest-head',
  'blob-large',
  'blob-1m',
  'push',
  'tags',
  'mirror',
  'builds',
] as const;
type Group = (typeof groups)[number];

interface Settings {
  quick: boolean;
  rows: Set<Group>;
  /** Each measurement is repeated in this many rounds, the servers' order alternating (ABBA). */
  rounds: number;
  warmupSec: number;
  durationSec: number;
  /** Large-blob and push repetitions per round; the row reports the median of all. */
  repsPerRound: number;
  largeBlobBytes: number;
  largeParallel: number;
  smallBlobBytes: number;
  tagCount: number;
  tagPageSize: number;
  pushBlobCount: number;
  pushBlobBytes: number;
  pushConcurrency: number;
  pushChunkBytes: number;
  manifestConnections: number;
  smallBlobConnections: number;
  tagConnections: number;
  /** Tags of the repository the mirror row mirrors. */
  mirrorTagCount: number;
  streamClient: StreamClient;
  keep: boolean;
  /** Seconds to wait, before each measurement, for the rest of the machine to go idle. */
  quietWaitSec: number;
  out: string;
  /** The Slipway checkout to run (default: this repository), e.g. to compare a branch. */
  slipwayRoot: string;
  /** A/B mode: a second Slipway checkout takes the reference's place. */
  referenceSlipway: string | undefined;
}

function usage(): string {
  return `usage: node bench/run.ts [--quick] [--rows ${groups.join(',')}] [--rounds N] [--duration SEC] [--warmup SEC] [--stream-client curl|http|fetch] [--slipway-root DIR] [--reference-slipway DIR] [--quiet-wait SEC] [--keep] [--out FILE]

  --quick        short smoke run: one round of 2 s rows, 32 MiB large blob, 500 tags, 40 mirrored tags,
                 15 + 20 webhooks and 100 + 2,000 log lines
  --rows LIST    only these row groups (comma separated); peak memory is always reported
  --rounds N     ABBA rounds per row (default 2, quick 1)
  --duration SEC measuring time of each autocannon run, per round (default 5, quick 2)
  --warmup SEC   warm-up before each autocannon run (default 2, quick 1)
  --stream-client curl|http|fetch
                 client for the large-blob streams (default curl: a native client costs ~5x less
                 CPU per byte than node:http or fetch, which matters with client and server on 2 cores)
  --slipway-root DIR
                 run the Slipway checkout in DIR instead of this one (e.g. a prototype branch)
  --reference-slipway DIR
                 A/B mode: run the Slipway checkout in DIR in place of the reference registry
                 (e.g. --reference-slipway . --slipway-root /tmp/prototype); targets then mean nothing
  --quiet-wait SEC
                 before each measurement, wait up to SEC for other processes on the machine to go
                 idle (default 60, quick 0); the CPU table's "other" column shows what remained
  --keep         keep the temporary data directories and server logs

  env BENCH_SLIPWAY_NODE_ARGS     node flags for the Slipway process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
  env BENCH_DISTRIBUTION_BIN      the reference registry binary (default /usr/bin/docker-registry)
  --out FILE     JSON results file (default bench/results/bench-<time>.json)`;
}

function parseSettings(argv: string[]): Settings {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}\n${usage()}`);
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (inline !== undefined) flags.set(key, inline);
    else if (
      [
        'rows',
        'only',
        'duration',
        'warmup',
        'rounds',
        'out',
        'stream-client',
        'slipway-root',
        'reference-slipway',
        'quiet-wait',
      ].includes(key)
    )
      flags.set(key, argv[++i] ?? '');
    else flags.set(key, true);
  }
  if (flags.has('help') || flags.has('h')) {
    console.log(usage());
    process.exit(0);
  }
  const known = new Set([
    'quick',
    'rows',
    'only',
    'duration',
    'warmup',
    'rounds',
    'keep',
    'out',
    'stream-client',
    'slipway-root',
    'reference-slipway',
    'quiet-wait',
  ]);
  for (const key of flags.keys()) if (!known.has(key)) throw new Error(`unknown option --${key}\n${usage()}`);
  const quick = flags.has('quick');
  const rowsFlag = (flags.get('rows') ?? flags.get('only')) as string | undefined;
  const rows = new Set<Group>(rowsFlag ? (rowsFlag.split(',').map((r) => r.trim()) as Group[]) : groups);
  for (const row of rows)
    if (!groups.includes(row))
      throw new Error(`unknown row group "${row}"; choose from ${groups.join(', ')}`);
  const client = flags.get('stream-client');
  if (client !== undefined && !['curl', 'http', 'fetch'].includes(client as string))
    throw new Error(`--stream-client is curl, http or fetch`);
  const number = (key: string, fallback: number) => (flags.has(key) ? Number(flags.get(key)) : fallback);
  const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*/, '');
  return {
    quick,
    rows,
    rounds: number('rounds', quick ? 1 : 2),
    warmupSec: number('warmup', quick ? 1 : 2),
    durationSec: number('duration', quick ? 2 : 5),
    repsPerRound: quick ? 1 : 2,
    largeBlobBytes: (quick ? 32 : 256) * MiB,
    largeParallel: 8,
    smallBlobBytes: 1 * MiB,
    tagCount: quick ? 500 : 5000,
    tagPageSize: 100,
    pushBlobCount: quick ? 4 : 8,
    pushBlobBytes: (quick ? 8 : 32) * MiB,
    pushConcurrency: 4,
    pushChunkBytes: 8 * MiB,
    manifestConnections: 64,
    smallBlobConnections: 32,
    tagConnections: 32,
    mirrorTagCount: quick ? 40 : 200,
    streamClient: (flags.get('stream-client') as StreamClient | undefined) ?? 'curl',
    keep: flags.has('keep'),
    quietWaitSec: number('quiet-wait', quick ? 0 : 60),
    slipwayRoot: resolve((flags.get('slipway-root') as string | undefined) ?? repoRoot),
    referenceSlipway: flags.has('reference-slipway')
      ? resolve(flags.get('reference-slipway') as string)
      : undefined,
    out:
      (flags.get('out') as string | undefined) ??
      join(benchDir, 'results', `bench-${stamp}${quick ? '-quick' : ''}.json`),
  };
}

// ── seeding: the same content, through the same API calls, on both servers ────────────────────────

interface SeedData {
  config: Buffer;
  layer: Buffer;
  manifest: Buffer;
  manifestDigest: string;
  large: Buffer | null;
  largeDigest: string | null;
  tags: string[];
}

const appRepo = 'bench/app';
const tagsRepo = 'bench/tags';
const pushRepo = 'bench/push';

function makeSeedData(settings: Settings): SeedData {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['/bin/sh'],
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] },
      history: [{ created: '2025-01-01T00:00:00Z', created_by: 'slipway bench' }],
    }),
  );
  const layer = randomFillSync(Buffer.allocUnsafe(settings.smallBlobBytes));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: { mediaType: mediaTypes.ociConfig, digest: sha256(config), size: config.length },
      layers: [{ mediaType: mediaTypes.ociLayer, digest: sha256(layer), size: layer.length }],
      annotations: { 'org.opencontainers.image.title': 'slipway-bench' },
    }),
  );
  const needsLarge = settings.rows.has('blob-large');
  const large = needsLarge ? randomFillSync(Buffer.allocUnsafe(settings.largeBlobBytes)) : null;
  const tags = settings.rows.has('tags')
    ? Array.from({ length: settings.tagCount }, (_, i) => `v1.${String(i).padStart(5, '0')}`)
    : [];
  return {
    config,
    layer,
    manifest,
    manifestDigest: sha256(manifest),
    large,
    largeDigest: large ? sha256(large) : null,
    tags,
  };
}

async function seed(server: RunningServer, data: SeedData): Promise<void> {
  const started = Date.now();
  // POST + PUT ?digest= with the body: the flow every registry supports.
  const push = (repo: string, blob: Buffer) =>
    pushBlobMonolithic(server.base, repo, blob, sha256(blob), 'post-put');
  await push(appRepo, data.config);
  await push(appRepo, data.layer);
  await putManifest(server.base, appRepo, 'latest', data.manifest, mediaTypes.ociManifest);
  if (data.large) await push(appRepo, data.large);
  if (data.tags.length > 0) {
    await push(tagsRepo, data.config);
    await push(tagsRepo, data.layer);
    await mapLimit(data.tags, 8, (tag) =>
      putManifest(server.base, tagsRepo, tag, data.manifest, mediaTypes.ociManifest),
    );
  }
  console.log(`  seeded ${server.label} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Checks both servers hold what was seeded, and learns how each pages tag lists. */
async function verifySeed(
  server: RunningServer,
  data: SeedData,
  settings: Settings,
): Promise<{ tagsPerPage?: number }> {
  const head = await fetch(`${server.base}/v2/${appRepo}/manifests/latest`, {
    method: 'HEAD',
    headers: { accept: manifestAccept },
  });
  if (head.status !== 200 || head.headers.get('docker-content-digest') !== data.manifestDigest) {
    throw new Error(
      `${server.label}: manifest HEAD gave ${head.status} ${head.headers.get('docker-content-digest')}`,
    );
  }
  if (data.tags.length === 0) return {};
  const { body } = await getJson<{ tags: string[] }>(
    `${server.base}/v2/${tagsRepo}/tags/list?n=${settings.tagPageSize}`,
  );
  return { tagsPerPage: body.tags.length };
}

// ── measurements ───────────────────────────────────────────────────────────────────────────────

let sampler: MemorySampler | undefined;

async function measure<T>(server: RunningServer, phase: string, spec: LoadSpec): Promise<LoadRun<T>> {
  await waitForQuiet();
  if (sampler) {
    sampler.sample();
    sampler.phase = `${phase}:${server.id}`;
  }
  try {
    return await runLoad<T>(spec, [server.pid]);
  } finally {
    if (sampler) {
      sampler.sample();
      sampler.phase = 'idle';
    }
  }
}

interface CpuRow {
  row: string;
  reference?: CpuUse;
  slipway?: CpuUse;
}

interface BenchState {
  settings: Settings;
  workDir: string;
  servers: Record<ServerId, RunningServer>;
  rows: Row[];
  cpu: CpuRow[];
  raw: Record<string, unknown>;
  notes: string[];
}

const ratioAtLeast = (value: number): Target => ({ kind: 'ratio-min', value, text: `≥ ${value}×` });
const ratioAtMost = (value: number): Target => ({ kind: 'ratio-max', value, text: `≤ ${value}×` });
const slipwayAtMost = (value: number, unit: string): Target => ({
  kind: 'abs-max',
  value,
  text: `≤ ${value} ${unit}`,
});

/**
 * Server order per round: A B, then B A (ABBA), so that drift in what else runs on the machine
 * (other jobs, page cache, thermal) weighs on both servers alike.
 */
/**
 * Writes and deletes as many bytes as the push rows will store. On a VM whose guest memory has not
 * been touched yet, the first writes into those pages cost ~10x more kernel time than later ones, and
 * which server met them first decided single push runs by ±30%. Afterwards the page cache reuses
 * pages that both servers' writes find equally warm.
 */
async function warmPageCache(dir: string, bytes: number): Promise<void> {
  console.log(`warming the page cache with ${(bytes / (1024 * MiB)).toFixed(1)} GiB before the push rows…`);
  const file = join(dir, 'page-cache-warmup');
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(8 * MiB, 1);
  try {
    for (let written = 0; written < bytes; written += chunk.length) await handle.write(chunk);
  } finally {
    await handle.close();
    rmSync(file, { force: true });
  }
}

function bothServers(state: BenchState): RunningServer[] {
  return [state.servers.reference, state.servers.slipway];
}

function serversForRound(state: BenchState, round: number): RunningServer[] {
  const { reference, slipway } = state.servers;
  return round % 2 === 0 ? [reference, slipway] : [slipway, reference];
}

async function autocannonRow(
  state: BenchState,
  group: Group,
  label: string,
  spec: (server: RunningServer) => AutocannonSpec,
  rows: (results: Record<ServerId, AutocannonResult>) => Row[],
): Promise<void> {
  console.log(`▶ ${label}`);
  const perRound: Record<ServerId, AutocannonResult[]> = { reference: [], slipway: [] };
  const cpuPerRound: Record<ServerId, CpuUse[]> = { reference: [], slipway: [] };
  for (let round = 0; round < state.settings.rounds; round++) {
    for (const server of serversForRound(state, round)) {
      const load = await measure<AutocannonResult>(server, group, spec(server));
      const r = load.result;
      const cpu = cpuUse(load, r.clientCpuSec, r.durationSec);
      perRound[server.id].push(r);
      cpuPerRound[server.id].push(cpu);
      const bad = r.non2xx + r.errors + r.timeouts;
      console.log(
        `  ${server.label.padEnd(12)} ${Math.round(r.requestsPerSec).toLocaleString('en-US').padStart(9)} req/s  p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms` +
          `  (cores: server ${cpu.server.toFixed(2)}, client ${cpu.client.toFixed(2)}, other ${cpu.other.toFixed(2)}; server ${Math.round((cpu.server / r.requestsPerSec) * 1e6)} µs CPU/req)${bad ? `  ${bad} FAILED` : ''}`,
      );
      if (bad > 0)
        state.notes.push(
          `${label}: ${server.label} had ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`,
        );
    }
  }
  const combine = (results: AutocannonResult[]): AutocannonResult => ({
    ...results[0]!,
    requestsPerSec: mean(results.map((r) => r.requestsPerSec)),
    requestsTotal: results.reduce((a, r) => a + r.requestsTotal, 0),
    bytesPerSec: mean(results.map((r) => r.bytesPerSec)),
    latencyMs: {
      p50: mean(results.map((r) => r.latencyMs.p50)),
      p90: mean(results.map((r) => r.latencyMs.p90)),
      p99: mean(results.map((r) => r.latencyMs.p99)),
      p999: mean(results.map((r) => r.latencyMs.p999)),
      mean: mean(results.map((r) => r.latencyMs.mean)),
      max: Math.max(...results.map((r) => r.latencyMs.max)),
    },
    non2xx: results.reduce((a, r) => a + r.non2xx, 0),
    errors: results.reduce((a, r) => a + r.errors, 0),
    timeouts: results.reduce((a, r) => a + r.timeouts, 0),
    durationSec: results.reduce((a, r) => a + r.durationSec, 0),
    clientCpuSec: results.reduce((a, r) => a + r.clientCpuSec, 0),
  });
  const combined = { reference: combine(perRound.reference), slipway: combine(perRound.slipway) };
  state.raw[group] = { combined, rounds: perRound, cpu: cpuPerRound };
  state.cpu.push({
    row: label,
    reference: averageCpu(cpuPerRound.reference),
    slipway: averageCpu(cpuPerRound.slipway),
  });
  state.rows.push(...rows(combined));
}

type Runs = RunsResult['runs'];

async function runsRow(
  state: BenchState,
  group: string,
  label: string,
  spec: (server: RunningServer, reps: number) => StreamSpec | PushSpec,
): Promise<Record<ServerId, { mbPerSec: number; runs: Runs }>> {
  console.log(`▶ ${label}`);
  const runs: Record<ServerId, Runs> = { reference: [], slipway: [] };
  const cpuPerRound: Record<ServerId, CpuUse[]> = { reference: [], slipway: [] };
  // One unmeasured repetition each first, like the autocannon rows' warm-up: a server's first large
  // transfer also pays for compiling its hot path.
  for (const server of bothServers(state)) await measure<RunsResult>(server, group, spec(server, 1));
  for (let round = 0; round < state.settings.rounds; round++) {
    for (const server of serversForRound(state, round)) {
      const load = await measure<RunsResult>(server, group, spec(server, state.settings.repsPerRound));
      const these = load.result.runs;
      runs[server.id].push(...these);
      const timed = these.reduce((a, r) => a + r.seconds, 0);
      cpuPerRound[server.id].push(
        cpuUse(
          load,
          these.reduce((a, r) => a + r.clientCpuSec, 0),
          timed,
        ),
      );
    }
  }
  const out = {} as Record<ServerId, { mbPerSec: number; runs: Runs }>;
  for (const id of ['reference', 'slipway'] as const) {
    out[id] = { mbPerSec: median(runs[id].map((r) => r.bytes / MB / r.seconds)), runs: runs[id] };
    const cpu = averageCpu(cpuPerRound[id]);
    console.log(
      `  ${state.servers[id].label.padEnd(12)} ${out[id].mbPerSec.toFixed(1).padStart(9)} MB/s (median)  runs ${runs[id].map((r) => (r.bytes / MB / r.seconds).toFixed(0)).join(', ')}` +
        `  (cores: server ${cpu.server.toFixed(2)}, client ${cpu.client.toFixed(2)}, other ${cpu.other.toFixed(2)})`,
    );
  }
  state.raw[`${group}: ${label}`] = { ...out, cpu: cpuPerRound };
  state.cpu.push({
    row: label,
    reference: averageCpu(cpuPerRound.reference),
    slipway: averageCpu(cpuPerRound.slipway),
  });
  return out;
}

async function calibrate(state: BenchState, bodyBytes: number): Promise<void> {
  const child = spawn(process.execPath, [trivialServerScript, String(bodyBytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  cleanups.push(stop);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`trivial server exited (${code})`)));
  });
  console.log('▶ calibration: autocannon against a bare node:http server (64 connections)');
  const { result: r } = await runLoad<AutocannonResult>({
    mode: 'autocannon',
    url: `http://127.0.0.1:${port}/v2/x/manifests/latest`,
    method: 'GET',
    connections: state.settings.manifestConnections,
    warmupSec: state.settings.warmupSec,
    durationSec: state.settings.durationSec,
    headers: { accept: manifestAccept },
  });
  await stop();
  console.log(
    `  bare node:http ${Math.round(r.requestsPerSec).toLocaleString('en-US')} req/s  p99 ${r.latencyMs.p99} ms`,
  );
  state.raw.calibrate = r;
  state.rows.push({
    group: 'calibrate',
    label: 'ceiling: bare node:http, 64 conns',
    unit: 'req/s',
    slipway: undefined,
    reference: undefined,
    info: r.requestsPerSec,
    digits: 0,
  });
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const workDir = mkdtempSync(join(tmpdir(), 'slipway-bench-'));
  cleanups.push(() => {
    if (settings.keep) console.log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  });
  const startedAt = new Date();
  const loadBefore = loadavg();
  console.log(
    `Slipway bench (${settings.quick ? 'quick' : 'full'}): rows ${[...settings.rows].join(', ')}; work dir ${workDir}`,
  );

  // PGlite runs initdb on the first start in a fresh data directory, once per installation; its
  // ~1.1 GiB peak is not what a running registry holds. A first start/stop initialises the data
  // directory, and the measured processes start on it, as they would after any restart.
  console.log('initialising the Slipway data director(ies) with a first start and stop…');
  const initPeaks: Partial<Record<ServerId, number>> = {};
  for (const [root, as] of [
    [settings.slipwayRoot, 'slipway'],
    ...(settings.referenceSlipway ? [[settings.referenceSlipway, 'reference']] : []),
  ] as Array<[string, ServerId]>) {
    const first = await startSlipway(root, workDir, as);
    initPeaks[as] = readStatus(first.pid)?.hwmBytes ?? 0;
    await first.stop();
  }

  console.log('starting servers…');
  // allSettled: when one fails to start, the other is still waited for, so that it gets stopped too.
  const started = await Promise.allSettled([
    settings.referenceSlipway
      ? startSlipway(settings.referenceSlipway, workDir, 'reference')
      : startDistribution(workDir),
    startSlipway(settings.slipwayRoot, workDir),
  ]);
  for (const outcome of started) if (outcome.status === 'fulfilled') cleanups.push(outcome.value.stop);
  for (const outcome of started) if (outcome.status === 'rejected') throw outcome.reason;
  const [reference, slipway] = started.map((o) => (o as PromiseFulfilledResult<RunningServer>).value) as [
    RunningServer,
    RunningServer,
  ];
  startedServers.push(reference, slipway);
  console.log(`  ${reference.label} ${reference.version} at ${reference.base} (pid ${reference.pid})`);
  console.log(`  ${slipway.label} ${slipway.version} at ${slipway.base} (pid ${slipway.pid})`);
  sampler = new MemorySampler(
    new Map([
      ['reference', reference.pid],
      ['slipway', slipway.pid],
    ]),
  );
  const idleRss = {
    reference: readStatus(reference.pid)?.rssBytes ?? 0,
    slipway: readStatus(slipway.pid)?.rssBytes ?? 0,
  };
  const startupHwm = {
    reference: readStatus(reference.pid)?.hwmBytes ?? 0,
    slipway: readStatus(slipway.pid)?.hwmBytes ?? 0,
  };
  cleanups.push(() => sampler?.stop());

  quietWait.maxSec = settings.quietWaitSec;
  const state: BenchState = {
    settings,
    workDir,
    servers: { reference, slipway },
    rows: [],
    cpu: [],
    raw: {},
    notes: [],
  };

  console.log('seeding both servers through the registry API…');
  const data = makeSeedData(settings);
  sampler.phase = 'seed';
  await seed(reference, data);
  await seed(slipway, data);
  sampler.phase = 'idle';
  const pageInfo = {
    reference: await verifySeed(reference, data, settings),
    slipway: await verifySeed(slipway, data, settings),
  };
  for (const server of bothServers(state)) {
    const perPage = pageInfo[server.id].tagsPerPage;
    if (perPage !== undefined && perPage !== settings.tagPageSize) {
      state.notes.push(
        `${server.label} ignores ?n=${settings.tagPageSize} on tags/list: every page request returns ${perPage} tags (no pagination)`,
      );
    }
  }

  const s = settings;
  const durations = { warmupSec: s.warmupSec, durationSec: s.durationSec };

  if (s.rows.has('calibrate')) await calibrate(state, data.manifest.length);

  if (s.rows.has('manifest-get')) {
    await autocannonRow(
      state,
      'manifest-get',
      `manifest GET by tag, ${s.manifestConnections} conns`,
      (server) => ({
        mode: 'autocannon',
        url: `${server.base}/v2/${appRepo}/manifests/latest`,
        method: 'GET',
        connections: s.manifestConnections,
        headers: { accept: manifestAccept },
        ...durations,
      }),
      (r) => [
        {
          group: 'manifest-get',
          label: 'manifest GET by tag',
          unit: 'req/s',
          reference: r.reference.requestsPerSec,
          slipway: r.slipway.requestsPerSec,
          target: ratioAtLeast(10),
          digits: 0,
        },
        {
          group: 'manifest-get',
          label: 'manifest GET by tag p99',
          unit: 'ms',
          reference: r.reference.latencyMs.p99,
          slipway: r.slipway.latencyMs.p99,
          target: slipwayAtMost(10, 'ms'),
          digits: 1,
          lowerIsBetter: true,
        },
      ],
    );
  }

  if (s.rows.has('manifest-head')) {
    await autocannonRow(
      state,
      'manifest-head',
      `manifest HEAD by digest, ${s.manifestConnections} conns`,
      (server) => ({
        mode: 'autocannon',
        url: `${server.base}/v2/${appRepo}/manifests/${data.manifestDigest}`,
        method: 'HEAD',
        connections: s.manifestConnections,
        headers: { accept: manifestAccept },
        ...durations,
      }),
      (r) => [
        {
          group: 'manifest-head',
          label: 'manifest HEAD by digest',
          unit: 'req/s',
          reference: r.reference.requestsPerSec,
          slipway: r.slipway.requestsPerSec,
          target: ratioAtLeast(10),
          digits: 0,
        },
        {
          group: 'manifest-head',
          label: 'manifest HEAD by digest p99',
          unit: 'ms',
          reference: r.reference.latencyMs.p99,
          slipway: r.slipway.latencyMs.p99,
          target: slipwayAtMost(10, 'ms'),
          digits: 1,
          lowerIsBetter: true,
        },
      ],
    );
  }

  if (s.rows.has('blob-large') && data.largeDigest) {
    const size = `${s.largeBlobBytes / MiB} MiB`;
    const streamSpec =
      (parallel: number) =>
      (server: RunningServer, reps: number): StreamSpec => ({
        mode: 'stream',
        url: `${server.base}/v2/${appRepo}/blobs/${data.largeDigest}`,
        parallel,
        reps,
        expectedBytes: s.largeBlobBytes,
        client: s.streamClient,
      });
    const one = await runsRow(
      state,
      'blob-large',
      `blob GET ${size}, 1 stream (${s.streamClient})`,
      streamSpec(1),
    );
    const many = await runsRow(
      state,
      'blob-large',
      `blob GET ${size}, ${s.largeParallel} streams (${s.streamClient})`,
      streamSpec(s.largeParallel),
    );
    state.rows.push(
      {
        group: 'blob-large',
        label: `blob GET ${size}, 1 stream`,
        unit: 'MB/s',
        reference: one.reference.mbPerSec,
        slipway: one.slipway.mbPerSec,
        target: ratioAtLeast(1.05),
        digits: 0,
      },
      {
        group: 'blob-large',
        label: `blob GET ${size}, ${s.largeParallel} streams`,
        unit: 'MB/s',
        reference: many.reference.mbPerSec,
        slipway: many.slipway.mbPerSec,
        target: ratioAtLeast(1.05),
        digits: 0,
      },
    );
  }

  if (s.rows.has('blob-1m')) {
    const layerDigest = sha256(data.layer);
    await autocannonRow(
      state,
      'blob-1m',
      `blob GET 1 MiB, ${s.smallBlobConnections} conns`,
      (server) => ({
        mode: 'autocannon',
        url: `${server.base}/v2/${appRepo}/blobs/${layerDigest}`,
        method: 'GET',
        connections: s.smallBlobConnections,
        ...durations,
      }),
      (r) => [
        {
          group: 'blob-1m',
          label: 'blob GET 1 MiB',
          unit: 'req/s',
          reference: r.reference.requestsPerSec,
          slipway: r.slipway.requestsPerSec,
          target: ratioAtLeast(3),
          digits: 0,
        },
        {
          group: 'blob-1m',
          label: 'blob GET 1 MiB',
          unit: 'MB/s',
          reference: (r.reference.requestsPerSec * s.smallBlobBytes) / MB,
          slipway: (r.slipway.requestsPerSec * s.smallBlobBytes) / MB,
          target: ratioAtLeast(3),
          digits: 0,
        },
      ],
    );
  }

  if (s.rows.has('push')) {
    const flows = {} as Record<ServerId, MonolithicFlow>;
    for (const server of bothServers(state))
      flows[server.id] = await probeMonolithicFlow(server.base, pushRepo);
    for (const server of bothServers(state)) {
      if (flows[server.id] !== 'single-post') {
        state.notes.push(
          `${server.label} answers a single-request POST ?digest= with 202 (unsupported): its monolithic pushes use POST + PUT ?digest= with the body`,
        );
      }
    }
    const pushedBytes = 2 * 2 * (s.rounds * s.repsPerRound + 1) * s.pushBlobCount * s.pushBlobBytes;
    await warmPageCache(state.workDir, pushedBytes);
    const total = `${(s.pushBlobCount * s.pushBlobBytes) / MiB} MiB`;
    const pushSpec =
      (kind: 'monolithic' | 'chunked') =>
      (server: RunningServer, reps: number): PushSpec => ({
        mode: 'push',
        base: server.base,
        repository: pushRepo,
        kind,
        flow: flows[server.id],
        blobCount: s.pushBlobCount,
        blobSize: s.pushBlobBytes,
        concurrency: s.pushConcurrency,
        chunkSize: s.pushChunkBytes,
        reps,
        nonce: `${kind}-${Date.now()}-${Math.random()}`,
      });
    const detail = `${s.pushBlobCount}×${s.pushBlobBytes / MiB} MiB, ${s.pushConcurrency} at a time`;
    const mono = await runsRow(state, 'push', `push monolithic ${total} (${detail})`, pushSpec('monolithic'));
    const chunked = await runsRow(
      state,
      'push',
      `push chunked ${total} (${s.pushChunkBytes / MiB} MiB PATCHes, ${detail})`,
      pushSpec('chunked'),
    );
    state.rows.push(
      {
        group: 'push',
        label: `push monolithic ${total}`,
        unit: 'MB/s',
        reference: mono.reference.mbPerSec,
        slipway: mono.slipway.mbPerSec,
        target: ratioAtLeast(1.5),
        digits: 0,
      },
      {
        group: 'push',
        label: `push chunked ${total}`,
        unit: 'MB/s',
        reference: chunked.reference.mbPerSec,
        slipway: chunked.slipway.mbPerSec,
        target: ratioAtLeast(1.5),
        digits: 0,
      },
    );
  }

  if (s.rows.has('tags') && data.tags.length > 0) {
    const sorted = [...data.tags].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const paths: string[] = [];
    for (let i = 0; i < sorted.length; i += s.tagPageSize) {
      const last = i === 0 ? '' : `&last=${encodeURIComponent(sorted[i - 1]!)}`;
      paths.push(`/v2/${tagsRepo}/tags/list?n=${s.tagPageSize}${last}`);
    }
    await autocannonRow(
      state,
      'tags',
      `tag list pages (n=${s.tagPageSize}, ${paths.length} pages of ${sorted.length} tags), ${s.tagConnections} conns`,
      (server) => ({
        mode: 'autocannon',
        url: `${server.base}/v2/${tagsRepo}/tags/list`,
        method: 'GET',
        connections: s.tagConnections,
        paths,
        ...durations,
      }),
      (r) => [
        {
          group: 'tags',
          label: `tag list page (n=${s.tagPageSize} of ${sorted.length})`,
          unit: 'req/s',
          reference: r.reference.requestsPerSec,
          slipway: r.slipway.requestsPerSec,
          target: ratioAtLeast(5),
          digits: 0,
        },
      ],
    );
  }

  if (s.rows.has('mirror')) {
    sampler.phase = 'mirror';
    const mirror = await benchMirror({ tagCount: s.mirrorTagCount, workDir, slipwayRoot: s.slipwayRoot });
    sampler.phase = 'idle';
    state.rows.push(...mirror.rows);
    state.notes.push(...mirror.notes);
    state.raw.mirror = mirror.raw;
  }

  if (s.rows.has('builds')) {
    sampler.phase = 'builds';
    const builds = await benchBuilds({ quick: s.quick, workDir, slipwayRoot: s.slipwayRoot });
    sampler.phase = 'idle';
    state.rows.push(...builds.rows);
    state.notes.push(...builds.notes);
    state.raw.builds = builds.raw;
  }

  // Memory: the whole run's peak (VmHWM, which also covers seeding), and the peak while streaming.
  sampler.stop();
  const hwm = {
    reference: readStatus(reference.pid)?.hwmBytes ?? 0,
    slipway: readStatus(slipway.pid)?.hwmBytes ?? 0,
  };
  const endRss = {
    reference: readStatus(reference.pid)?.rssBytes ?? 0,
    slipway: readStatus(slipway.pid)?.rssBytes ?? 0,
  };
  state.rows.push({
    group: 'memory',
    label: 'peak RSS, whole process life (VmHWM)',
    unit: 'MiB',
    reference: hwm.reference / MiB,
    slipway: hwm.slipway / MiB,
    target: ratioAtMost(0.5),
    digits: 0,
    lowerIsBetter: true,
  });
  state.rows.push({
    group: 'memory',
    label: 'peak RSS sampled after startup (50 ms)',
    unit: 'MiB',
    reference: (sampler.maxRss.get('reference') ?? 0) / MiB,
    slipway: (sampler.maxRss.get('slipway') ?? 0) / MiB,
    target: ratioAtMost(0.5),
    digits: 0,
    lowerIsBetter: true,
  });
  const streamingRss = {
    reference: sampler.maxInPhases('reference', 'blob-large:reference'),
    slipway: sampler.maxInPhases('slipway', 'blob-large:slipway'),
  };
  if (streamingRss.reference !== undefined && streamingRss.slipway !== undefined) {
    state.rows.push({
      group: 'memory',
      label: `peak RSS while streaming ${s.largeBlobBytes / MiB} MiB blobs`,
      unit: 'MiB',
      reference: streamingRss.reference / MiB,
      slipway: streamingRss.slipway / MiB,
      target: ratioAtMost(0.5),
      digits: 0,
      lowerIsBetter: true,
    });
  }
  state.rows.push({
    group: 'memory',
    label: 'RSS when ready (before seeding)',
    unit: 'MiB',
    reference: idleRss.reference / MiB,
    slipway: idleRss.slipway / MiB,
    digits: 0,
    lowerIsBetter: true,
  });
  state.rows.push({
    group: 'memory',
    label: 'RSS at the end of the run',
    unit: 'MiB',
    reference: endRss.reference / MiB,
    slipway: endRss.slipway / MiB,
    digits: 0,
    lowerIsBetter: true,
  });
  state.rows.push({
    group: 'memory',
    label: 'VmHWM when ready (startup peak)',
    unit: 'MiB',
    reference: startupHwm.reference / MiB,
    slipway: startupHwm.slipway / MiB,
    digits: 0,
    lowerIsBetter: true,
  });
  state.rows.push({
    group: 'memory',
    label: 'VmHWM of the first start (PGlite initdb), once',
    unit: 'MiB',
    reference: initPeaks.reference !== undefined ? initPeaks.reference / MiB : undefined,
    slipway: (initPeaks.slipway ?? 0) / MiB,
    digits: 0,
    lowerIsBetter: true,
  });

  const finishedAt = new Date();
  const meta = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    mode: settings.quick ? 'quick' : 'full',
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg(),
    },
    node: process.version,
    distribution: reference.version,
    slipway: slipway.version,
  };

  console.log('');
  console.log(
    `Results — ${meta.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${meta.machine.cpus} cores (${meta.machine.cpuModel}), Node ${meta.node}, ${reference.label} ${meta.distribution}, Slipway ${meta.slipway}${settings.quick ? ', QUICK run' : ''}`,
  );
  const labels = { reference: reference.label, slipway: slipway.label };
  console.log(formatResultsTable(state.rows, labels));
  console.log('');
  console.log(
    'CPU while measuring (average cores busy of 2; client = load generator, other = rest of the machine):',
  );
  console.log(formatCpuTable(state.cpu, labels));
  const waited = quietWaitNote();
  if (waited) state.notes.push(waited);
  for (const row of state.cpu) {
    const other = Math.max(row.reference?.other ?? 0, row.slipway?.other ?? 0);
    if (other > 0.25)
      state.notes.push(
        `${row.row}: other processes kept up to ${other.toFixed(2)} cores busy while measuring; treat these figures as disturbed`,
      );
  }
  if (state.notes.length > 0) {
    console.log('');
    for (const note of state.notes) console.log(`note: ${note}`);
  }

  mkdirSync(dirname(settings.out), { recursive: true });
  writeFileSync(
    settings.out,
    `${JSON.stringify({ meta, settings: { ...settings, rows: [...settings.rows] }, rows: state.rows, cpu: state.cpu, notes: state.notes, memory: { initPeaks, endRss, idleRss, startupHwm, hwm, phaseMax: Object.fromEntries([...sampler.phaseMax].map(([k, v]) => [k, Object.fromEntries(v)])) }, raw: state.raw }, null, 2)}\n`,
  );
  console.log(`\nJSON: ${relative(process.cwd(), settings.out)}`);
}

runMain(main);
