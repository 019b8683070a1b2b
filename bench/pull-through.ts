/**
 * Pull-through caches side by side, in one run, on loopback: Slipway's (`proxy.upstreams`) and CNCF
 * Distribution's proxy mode, both in front of the same upstream registry, each through its own
 * counting proxy so that its upstream requests can be told apart. For the cold-link row, those proxies
 * pace the upstream's response bodies to a link rate, as for an upstream behind a WAN link. See
 * bench/README.md.
 *
 *   node bench/pull-through.ts                          full run (a few minutes)
 *   node bench/pull-through.ts --quick                  smoke run (about a minute)
 *   node bench/pull-through.ts --rows proxy-cold,proxy-concurrency
 *   node bench/pull-through.ts --rows proxy-cold-link --link-rate 100MB/s
 *   node bench/pull-through.ts --help
 */
import { randomFillSync, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProxiedRequest } from './lib/counting-proxy.ts';
import {
  MB,
  MiB,
  cleanups,
  mean,
  median,
  quietWait,
  quietWaitNote,
  runLoad,
  runMain,
  startedServers,
  sum,
  waitForQuiet,
  type LoadRun,
} from './lib/harness.ts';
import type { AutocannonResult, AutocannonSpec, LoadSpec, RunsResult, StreamSpec } from './lib/loadgen.ts';
import {
  agent,
  manifestAccept,
  mediaTypes,
  pushBlobMonolithic,
  putManifest,
  send,
  sha256,
} from './lib/oci-client.ts';
import {
  formatCacheCpuTable,
  formatCacheTable,
  type CacheRow,
  type CacheTarget,
  type CpuLine,
  type PathCpu,
} from './lib/report.ts';
import {
  MemorySampler,
  readStatus,
  startCountingProxy,
  startDistribution,
  startSlipway,
  type CountingProxy,
  type RunningServer,
} from './lib/servers.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);

// ── options ─────────────────────────────────────────────────────────────────────────────────────

const groups = [
  'proxy-cold',
  'proxy-cold-link',
  'proxy-warm',
  'proxy-manifest',
  'proxy-concurrency',
] as const;
type Group = (typeof groups)[number];

interface Settings {
  quick: boolean;
  rows: Set<Group>;
  /** Rounds of the warm rows, the paths' order changing each round. */
  rounds: number;
  /** Rounds of the cold rows: one fresh blob, one transfer per path each. */
  coldRounds: number;
  /** Bytes/s of the link the counting proxies pace upstream response bodies to in the cold-link row. */
  linkRate: number;
  /** Rounds of the concurrency row: one fresh blob, one burst of GETs per path each. */
  herdRounds: number;
  warmupSec: number;
  durationSec: number;
  /** Warm large-blob repetitions per round; the row reports the median of all. */
  repsPerRound: number;
  largeBlobBytes: number;
  smallLayerCount: number;
  smallLayerBytes: number;
  herdBlobBytes: number;
  herdClients: number;
  /** Unmeasured cold pulls along every path before the first row. */
  warmupPulls: number;
  warmupBlobBytes: number;
  manifestConnections: number;
  /** Sequential manifest GETs through each cache, to count its upstream requests per GET. */
  manifestProbeGets: number;
  keep: boolean;
  quietWaitSec: number;
  out: string;
  slipwayRoot: string;
}

/** The name of the upstream in Slipway's config: its repositories are pulled as `hub/<name>`. */
const upstreamName = 'hub';

function usage(): string {
  return `usage: node bench/pull-through.ts [--quick] [--rows ${groups.join(',')}] [--rounds N] [--cold-rounds N] [--link-rate RATE] [--duration SEC] [--warmup SEC] [--slipway-root DIR] [--quiet-wait SEC] [--keep] [--out FILE]

  --quick          smoke run: 32 MiB cold and warm blob, 16 MiB concurrency blob, one round, 2 s autocannon rows,
                   a 25 MB/s link
  --rows LIST      only these row groups (comma separated)
  --rounds N       rounds of the warm rows (default 2, quick 1); the concurrency row runs 2N rounds
  --cold-rounds N  rounds of each cold row, one fresh blob each (default 6, quick 1)
  --link-rate RATE the upstream link of the cold-link row: 50MB/s, 40MiB/s, 400Mbit/s or a number of
                   MB/s (default 50 MB/s, quick 25 MB/s)
  --duration SEC   measuring time of each autocannon run, per round (default 5, quick 2)
  --warmup SEC     warm-up before each autocannon run (default 2, quick 1)
  --slipway-root DIR
                   run the Slipway checkout in DIR instead of this one
  --quiet-wait SEC before each measurement, wait up to SEC for other processes on the machine to go
                   idle (default 60, quick 0)
  --keep           keep the temporary data directories and logs
  --out FILE       JSON results file (default bench/results/pull-through-<time>.json)

  env BENCH_SLIPWAY_NODE_ARGS     node flags for the Slipway process
  env BENCH_DISTRIBUTION_BIN      the Distribution binary (default /usr/bin/docker-registry)`;
}

/** `50MB/s`, `40MiB/s`, `400Mbit/s`, or a number of MB/s, in bytes/s. */
function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(MB|MiB|Mbit)?(?:\/s)?$/i.exec(text.trim());
  const unit = { mb: MB, mib: MiB, mbit: MB / 8 }[(match?.[2] ?? 'MB').toLowerCase()];
  const rate = match && unit ? Number(match[1]) * unit : NaN;
  if (!(rate > 0)) throw new Error(`--link-rate: cannot read "${text}" as a rate (e.g. 50MB/s)\n${usage()}`);
  return rate;
}

function parseSettings(argv: string[]): Settings {
  const withValue = [
    'rows',
    'rounds',
    'cold-rounds',
    'link-rate',
    'duration',
    'warmup',
    'slipway-root',
    'quiet-wait',
    'out',
  ];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}\n${usage()}`);
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (inline !== undefined) flags.set(key, inline);
    else if (withValue.includes(key)) flags.set(key, argv[++i] ?? '');
    else flags.set(key, true);
  }
  if (flags.has('help') || flags.has('h')) {
    console.log(usage());
    process.exit(0);
  }
  const known = new Set([...withValue, 'quick', 'keep']);
  for (const key of flags.keys()) if (!known.has(key)) throw new Error(`unknown option --${key}\n${usage()}`);
  const quick = flags.has('quick');
  const rowsFlag = flags.get('rows') as string | undefined;
  const rows = new Set<Group>(rowsFlag ? (rowsFlag.split(',').map((r) => r.trim()) as Group[]) : groups);
  for (const row of rows)
    if (!groups.includes(row))
      throw new Error(`unknown row group "${row}"; choose from ${groups.join(', ')}`);
  const number = (key: string, fallback: number) => (flags.has(key) ? Number(flags.get(key)) : fallback);
  const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*/, '');
  return {
    quick,
    rows,
    rounds: number('rounds', quick ? 1 : 2),
    coldRounds: number('cold-rounds', quick ? 1 : 6),
    linkRate: parseRate((flags.get('link-rate') as string | undefined) ?? (quick ? '25MB/s' : '50MB/s')),
    herdRounds: 2 * number('rounds', quick ? 1 : 2),
    warmupSec: number('warmup', quick ? 1 : 2),
    durationSec: number('duration', quick ? 2 : 5),
    repsPerRound: quick ? 1 : 2,
    largeBlobBytes: (quick ? 32 : 128) * MiB,
    smallLayerCount: 3,
    smallLayerBytes: 1 * MiB,
    herdBlobBytes: (quick ? 16 : 64) * MiB,
    herdClients: 32,
    warmupPulls: quick ? 2 : 4,
    warmupBlobBytes: 32 * MiB,
    manifestConnections: 64,
    manifestProbeGets: quick ? 20 : 100,
    keep: flags.has('keep'),
    quietWaitSec: number('quiet-wait', quick ? 0 : 60),
    slipwayRoot: resolve((flags.get('slipway-root') as string | undefined) ?? repoRoot),
    out:
      (flags.get('out') as string | undefined) ??
      join(benchDir, 'results', `pull-through-${stamp}${quick ? '-quick' : ''}.json`),
  };
}

// ── the paths an image is pulled along ─────────────────────────────────────────────────────────

type PathKey = 'bare' | 'direct' | 'distribution' | 'slipway' | 'local';

/** One way to pull: a registry base URL, how upstream repository names look there, who does the work. */
interface PullPath {
  key: PathKey;
  label: string;
  base: string;
  /** The name, through this path, of the upstream repository `remote`. */
  repository(remote: string): string;
  /** The counting proxy this path reaches the upstream through. */
  proxy?: CountingProxy;
  /** The cache's process. */
  cachePid?: number;
  /** The upstream registry and the counting proxy in front of it, when the path reaches them. */
  upstreamPids: number[];
}

interface Image {
  repository: string;
  tag: string;
  config: Buffer;
  layers: Buffer[];
  manifest: Buffer;
  digest: string;
}

function makeImage(repository: string, layers: Buffer[]): Image {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map(() => `sha256:${'0'.repeat(64)}`) },
      history: [{ created: '2025-01-01T00:00:00Z', created_by: `slipway pull-through bench ${repository}` }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: { mediaType: mediaTypes.ociConfig, digest: sha256(config), size: config.length },
      layers: layers.map((layer) => ({
        mediaType: mediaTypes.ociLayer,
        digest: sha256(layer),
        size: layer.length,
      })),
    }),
  );
  return { repository, tag: 'latest', config, layers, manifest, digest: sha256(manifest) };
}

/** Pushes the image to a registry through the API (POST + PUT ?digest=, which every registry takes). */
async function pushImage(base: string, repository: string, image: Image): Promise<void> {
  for (const blob of [image.config, ...image.layers])
    await pushBlobMonolithic(base, repository, blob, sha256(blob), 'post-put');
  await putManifest(base, repository, image.tag, image.manifest, mediaTypes.ociManifest);
}

/** A fresh random blob in `buffer`, unique to `nonce` (so that no cache has seen it). */
function freshBlob(buffer: Buffer, nonce: string): Buffer {
  randomFillSync(buffer);
  buffer.write(`${nonce}/`, 0, 'latin1');
  return buffer;
}

function blobUrl(path: PullPath, remote: string, digest: string): string {
  return `${path.base}/v2/${path.repository(remote)}/blobs/${digest}`;
}

/** GETs the manifest by tag through `path`, as a client's pull starts; checks its digest. */
async function getManifest(path: PullPath, image: Image, reference = image.tag): Promise<void> {
  const response = await send(`${path.base}/v2/${path.repository(image.repository)}/manifests/${reference}`, {
    headers: { accept: manifestAccept },
  });
  const digest = response.headers['docker-content-digest'];
  if (response.status !== 200 || sha256(response.body) !== image.digest)
    throw new Error(
      `${path.label}: GET manifest ${image.repository}:${reference} gave HTTP ${response.status} (${String(digest)}) ${response.body.toString('utf8').slice(0, 300)}`,
    );
}

/** GETs a blob through `path` and checks its bytes against the digest (unmeasured). */
function verifyBlob(path: PullPath, remote: string, blob: Buffer): Promise<void> {
  const digest = sha256(blob);
  const url = blobUrl(path, remote, digest);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      res.once('error', reject);
      res.once('end', () => {
        const got = `sha256:${hash.digest('hex')}`;
        if (res.statusCode === 200 && got === digest && bytes === blob.length) resolve();
        else
          reject(new Error(`${path.label}: GET ${url} gave HTTP ${res.statusCode}, ${bytes} bytes, ${got}`));
      });
    });
    req.once('error', reject);
    req.end();
  });
}

/** The upstream blob GETs of one digest in a counting proxy's record, and the bytes they carried. */
function blobGets(
  record: ProxiedRequest[],
  digest: string,
): { gets: number; bytes: number; requests: ProxiedRequest[] } {
  const gets = record.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${digest}`));
  return { gets: gets.length, bytes: sum(gets.map((r) => r.bytes)), requests: record };
}

/** Waits until a counting proxy has seen no new request for half a second (at most 30 s). */
async function settle(proxy: CountingProxy): Promise<void> {
  const deadline = Date.now() + 30_000;
  let seen = (await proxy.requests()).length;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const now = (await proxy.requests()).length;
    if (now === seen) return;
    seen = now;
  }
}

/** The paths' order in a round: rotated every two rounds, reversed every other one. */
function orderFor<T>(items: readonly T[], round: number): T[] {
  const k = Math.floor(round / 2) % items.length;
  const rotated = [...items.slice(k), ...items.slice(0, k)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

// ── measuring ──────────────────────────────────────────────────────────────────────────────────

interface BenchState {
  settings: Settings;
  paths: Record<PathKey, PullPath>;
  rows: CacheRow[];
  cpu: CpuLine[];
  raw: Record<string, unknown>;
  notes: string[];
  sampler: MemorySampler;
}

/** Runs one load through `path`, with its cache's and the upstream side's CPU read around it. */
async function measure<T>(
  state: BenchState,
  path: PullPath,
  group: Group,
  spec: LoadSpec,
): Promise<LoadRun<T>> {
  await waitForQuiet();
  state.sampler.sample();
  state.sampler.phase = `${group}:${path.key}`;
  try {
    return await runLoad<T>(spec, [...(path.cachePid ? [path.cachePid] : []), ...path.upstreamPids]);
  } finally {
    state.sampler.sample();
    state.sampler.phase = 'idle';
  }
}

function pathCpu(path: PullPath, load: LoadRun<unknown>, clientCpuSec: number, clientSec: number): PathCpu {
  const seconds = load.measuredSec;
  const cacheSec = path.cachePid ? load.watchedCpuSec[0]! : 0;
  const upstreamSec = sum(load.watchedCpuSec) - cacheSec;
  const client = clientCpuSec / clientSec;
  const cpu: PathCpu = {
    upstream: upstreamSec / seconds,
    client,
    other: Math.max(0, (load.machineCpuSec - cacheSec - upstreamSec) / seconds - client),
  };
  if (path.cachePid) cpu.cache = cacheSec / seconds;
  return cpu;
}

function averagePathCpu(uses: PathCpu[]): PathCpu {
  const cpu: PathCpu = {
    upstream: mean(uses.map((u) => u.upstream)),
    client: mean(uses.map((u) => u.client)),
    other: mean(uses.map((u) => u.other)),
  };
  if (uses.every((u) => u.cache !== undefined)) cpu.cache = mean(uses.map((u) => u.cache!));
  return cpu;
}

function recordCpu(state: BenchState, row: string, perPath: Map<PullPath, PathCpu[]>): void {
  for (const [path, uses] of perPath) state.cpu.push({ row, path: path.label, cpu: averagePathCpu(uses) });
}

const cpuText = (cpu: PathCpu) =>
  `cores: cache ${cpu.cache?.toFixed(2) ?? '–'}, upstream side ${cpu.upstream.toFixed(2)}, client ${cpu.client.toFixed(2)}, other ${cpu.other.toFixed(2)}`;

const slipwayAtLeast = (value: number): CacheTarget => ({
  kind: 'baseline-ratio-min',
  value,
  text: `Slipway/Base ≥ ${value}×`,
});
const slipwayEquals = (value: number): CacheTarget => ({ kind: 'equals', value, text: `Slipway = ${value}` });

const sizeText = (bytes: number) => `${bytes / MiB} MiB`;

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Unmeasured: a few cold pulls of fresh blobs along every path, so that the counting proxies and both
 * caches have compiled their hot paths before the first measured pull. A fresh Node process moves its
 * first 128 MiB at a third of the speed of later ones.
 */
async function warmUp(state: BenchState): Promise<void> {
  const { bare, direct, distribution, slipway } = state.paths;
  const buffer = Buffer.allocUnsafe(state.settings.warmupBlobBytes);
  console.log(
    `warming up: ${state.settings.warmupPulls} cold pulls of ${sizeText(buffer.length)} along every path (unmeasured)`,
  );
  for (let i = 0; i < state.settings.warmupPulls; i++) {
    const blob = freshBlob(buffer, `warmup-${i}-${Date.now()}`);
    const image = makeImage(`pull/warmup-${i}`, [blob]);
    await pushImage(bare.base, image.repository, image);
    for (const path of [direct, distribution, slipway]) {
      await getManifest(path, image);
      await verifyBlob(path, image.repository, blob);
      await verifyBlob(path, image.repository, blob);
    }
  }
}

/** What the cold rows measured along each path, one value per round. */
interface ColdPulls {
  mbPerSec: Map<PullPath, number[]>;
  firstByteMs: Map<PullPath, number[]>;
  upstreamGets: Map<PullPath, number[]>;
}

/**
 * The cold rows' measurement: the first GET of a blob no cache has seen, along each of `paths`. Each
 * round pushes a fresh random blob in a new repository (`pull/<name>-N`) to the upstream, fetches its
 * manifest along each path (unmeasured, as a client's pull starts), then the blob, once, with curl.
 */
async function coldPulls(
  state: BenchState,
  group: 'proxy-cold' | 'proxy-cold-link',
  options: { name: string; label: string; cpuRow: string; paths: PullPath[] },
): Promise<ColdPulls> {
  const s = state.settings;
  const { bare } = state.paths;
  console.log(`▶ ${options.label}`);
  const buffer = Buffer.allocUnsafe(s.largeBlobBytes);
  const pulls: ColdPulls = { mbPerSec: new Map(), firstByteMs: new Map(), upstreamGets: new Map() };
  const cpu = new Map<PullPath, PathCpu[]>();
  const rounds: unknown[] = [];
  for (let round = 0; round < s.coldRounds; round++) {
    const nonce = `${options.name}-${round}-${Date.now()}`;
    const blob = freshBlob(buffer, nonce);
    const digest = sha256(blob);
    const image = makeImage(`pull/${options.name}-${round}`, [blob]);
    await pushImage(bare.base, image.repository, image);
    const perRound: Record<string, unknown> = { digest };
    for (const path of orderFor(options.paths, round)) {
      await path.proxy?.reset();
      await getManifest(path, image);
      const spec: StreamSpec = {
        mode: 'stream',
        url: blobUrl(path, image.repository, digest),
        parallel: 1,
        reps: 1,
        expectedBytes: blob.length,
        client: 'curl',
        warmup: false,
      };
      const load = await measure<RunsResult>(state, path, group, spec);
      const run = load.result.runs[0]!;
      const transfer = run.transfers?.[0];
      const use = pathCpu(path, load, run.clientCpuSec, run.seconds);
      const upstream = path.proxy ? blobGets(await path.proxy.requests(), digest) : undefined;
      await verifyBlob(path, image.repository, blob);
      push(pulls.mbPerSec, path, run.bytes / MB / run.seconds);
      push(pulls.firstByteMs, path, (transfer?.firstByteSec ?? NaN) * 1000);
      push(cpu, path, use);
      if (upstream) push(pulls.upstreamGets, path, upstream.gets);
      perRound[path.key] = { run, upstream, cpu: use };
      console.log(
        `  ${path.label.padEnd(24)} ${(run.bytes / MB / run.seconds).toFixed(0).padStart(6)} MB/s  first byte ${((transfer?.firstByteSec ?? NaN) * 1000).toFixed(1)} ms` +
          `${upstream ? `  upstream blob GETs ${upstream.gets}` : ''}  (${cpuText(use)})`,
      );
    }
    rounds.push(perRound);
  }
  state.raw[group] = rounds;
  recordCpu(state, options.cpuRow, cpu);
  return pulls;
}

const medianOf = (map: Map<PullPath, number[]>, path: PullPath) => {
  const values = map.get(path);
  return values ? median(values) : undefined;
};
const maxOf = (map: Map<PullPath, number[]>, path: PullPath) => {
  const values = map.get(path);
  return values ? Math.max(...values) : undefined;
};

/** The rows every cold measurement reports: MB/s against direct, with `target`, and time to first byte. */
function coldPullRows(
  state: BenchState,
  group: 'proxy-cold' | 'proxy-cold-link',
  label: string,
  pulls: ColdPulls,
  options: { target: CacheTarget; mbDigits: number },
): CacheRow[] {
  const { direct, distribution, slipway } = state.paths;
  return [
    {
      group,
      label,
      unit: 'MB/s',
      baselineLabel: 'direct',
      baseline: medianOf(pulls.mbPerSec, direct),
      reference: medianOf(pulls.mbPerSec, distribution),
      slipway: medianOf(pulls.mbPerSec, slipway),
      target: options.target,
      digits: options.mbDigits,
    },
    {
      group,
      label: `${label}, time to first byte`,
      unit: 'ms',
      baselineLabel: 'direct',
      baseline: medianOf(pulls.firstByteMs, direct),
      reference: medianOf(pulls.firstByteMs, distribution),
      slipway: medianOf(pulls.firstByteMs, slipway),
      digits: 1,
      lowerIsBetter: true,
    },
  ];
}

/**
 * Row 1: cold pulls on loopback, through each cache and from the upstream directly, and the same GET
 * from the upstream without the counting proxy in the way.
 */
async function coldRows(state: BenchState): Promise<void> {
  const s = state.settings;
  const { bare, direct, distribution, slipway } = state.paths;
  const size = sizeText(s.largeBlobBytes);
  const pulls = await coldPulls(state, 'proxy-cold', {
    name: 'cold',
    label: `cold pull, ${size} blob (curl, first GET per cache)`,
    cpuRow: 'cold pull',
    paths: [direct, distribution, slipway, bare],
  });
  state.rows.push(
    ...coldPullRows(state, 'proxy-cold', `cold pull ${size}`, pulls, {
      target: slipwayAtLeast(0.9),
      mbDigits: 0,
    }),
    {
      group: 'proxy-cold',
      label: `cold pull ${size}, upstream blob GETs per blob (max)`,
      unit: 'count',
      baselineLabel: 'direct',
      baseline: maxOf(pulls.upstreamGets, direct),
      reference: maxOf(pulls.upstreamGets, distribution),
      slipway: maxOf(pulls.upstreamGets, slipway),
      target: slipwayEquals(1),
      digits: 0,
      lowerIsBetter: true,
    },
    {
      group: 'proxy-cold',
      label: `GET ${size} from the upstream without counting proxy`,
      unit: 'MB/s',
      baselineLabel: 'bare upstream',
      baseline: medianOf(pulls.mbPerSec, bare),
      reference: undefined,
      slipway: undefined,
      digits: 0,
    },
    {
      group: 'proxy-cold',
      label: `GET ${size} from the upstream without counting proxy, first byte`,
      unit: 'ms',
      baselineLabel: 'bare upstream',
      baseline: medianOf(pulls.firstByteMs, bare),
      reference: undefined,
      slipway: undefined,
      digits: 1,
      lowerIsBetter: true,
    },
  );
}

/**
 * Row 1b: the cold pulls of row 1 with the upstream behind a slower link, as users pull from Docker
 * Hub or Quay: each path's counting proxy paces the upstream's response bodies to `--link-rate`. On
 * loopback every hop costs CPU the 2 cores share, so no cache can come within a few percent of direct
 * there; behind a link slower than the cache's own throughput, the extra hop should cost only its
 * latency. Every path has a link of its own, shared by all the upstream GETs it makes.
 */
async function coldLinkRows(state: BenchState): Promise<void> {
  const s = state.settings;
  const { direct, distribution, slipway } = state.paths;
  const paths = [direct, distribution, slipway];
  const size = sizeText(s.largeBlobBytes);
  const rate = `${Number((s.linkRate / MB).toPrecision(3))} MB/s`;
  // Upstream GETs still running from an earlier row would take a share of the link.
  for (const path of paths) await settle(path.proxy!);
  for (const path of paths) await path.proxy!.setLinkRate(s.linkRate);
  let pulls: ColdPulls;
  try {
    pulls = await coldPulls(state, 'proxy-cold-link', {
      name: 'cold-link',
      label: `cold pull over a ${rate} link, ${size} blob (curl, first GET per cache)`,
      cpuRow: `cold pull, ${rate} link`,
      paths,
    });
  } finally {
    for (const path of paths) await path.proxy!.setLinkRate(0);
  }
  state.rows.push(
    ...coldPullRows(state, 'proxy-cold-link', `cold pull ${size}, ${rate} link`, pulls, {
      target: slipwayAtLeast(0.95),
      mbDigits: 1,
    }),
  );
  const directMBps = medianOf(pulls.mbPerSec, direct);
  if (directMBps !== undefined && directMBps < (0.9 * s.linkRate) / MB)
    state.notes.push(
      `cold pull over a ${rate} link: direct reached ${directMBps.toFixed(0)} MB/s, below 90% of the link rate: something else than the link set the pace (a busy machine, or a link rate too high for it)`,
    );
}

/** The image the warm rows pull: one large layer and a few small ones, pulled once through each cache. */
async function primeWarmImage(state: BenchState): Promise<Image> {
  const s = state.settings;
  const { bare, distribution, slipway, local } = state.paths;
  const layers = [
    freshBlob(Buffer.allocUnsafe(s.largeBlobBytes), `warm-large-${Date.now()}`),
    ...Array.from({ length: s.smallLayerCount }, (_, i) =>
      freshBlob(Buffer.allocUnsafe(s.smallLayerBytes), `warm-small-${i}-${Date.now()}`),
    ),
  ];
  const image = makeImage('pull/app', layers);
  console.log(
    `priming: ${image.repository}:latest (${sizeText(s.largeBlobBytes)} + ${s.smallLayerCount} × ${sizeText(s.smallLayerBytes)} layers) pushed upstream, pulled once through each cache, pushed to a Slipway repository`,
  );
  await pushImage(bare.base, image.repository, image);
  for (const path of [distribution, slipway]) {
    await getManifest(path, image);
    for (const blob of [image.config, ...image.layers]) await verifyBlob(path, image.repository, blob);
  }
  // After the pull through Slipway's cache: the local repository then holds the same stored blob.
  await pushImage(local.base, local.repository(image.repository), image);
  await getManifest(local, image);
  return image;
}

/** Upstream blob GETs that should not have happened while a warm row ran. */
async function checkNoUpstreamBlobGets(state: BenchState, row: string): Promise<void> {
  for (const path of [state.paths.distribution, state.paths.slipway]) {
    const record = (await path.proxy?.requests()) ?? [];
    const gets = record.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    if (gets.length > 0)
      state.notes.push(`${row}: ${path.label} made ${gets.length} upstream blob GET(s) on a warm cache`);
  }
}

/** Row 2: repeated GETs of the cached large layer, against the same blob in a plain Slipway repository. */
async function warmBlobRows(state: BenchState, image: Image): Promise<void> {
  const s = state.settings;
  const { distribution, slipway, local } = state.paths;
  const large = image.layers[0]!;
  const digest = sha256(large);
  const label = `warm pull, ${sizeText(s.largeBlobBytes)} blob (curl, 1 stream)`;
  console.log(`▶ ${label}`);
  for (const path of [distribution, slipway]) await path.proxy?.reset();
  const paths = [local, slipway, distribution];
  const runs = new Map<PullPath, RunsResult['runs']>();
  const cpu = new Map<PullPath, PathCpu[]>();
  for (let round = 0; round < s.rounds; round++) {
    for (const path of orderFor(paths, round)) {
      const spec: StreamSpec = {
        mode: 'stream',
        url: blobUrl(path, image.repository, digest),
        parallel: 1,
        reps: s.repsPerRound,
        expectedBytes: large.length,
        client: 'curl',
      };
      const load = await measure<RunsResult>(state, path, 'proxy-warm', spec);
      const these = load.result.runs;
      const use = pathCpu(
        path,
        load,
        sum(these.map((r) => r.clientCpuSec)),
        sum(these.map((r) => r.seconds)),
      );
      for (const run of these) push(runs, path, run);
      push(cpu, path, use);
      console.log(
        `  ${path.label.padEnd(24)} runs ${these.map((r) => (r.bytes / MB / r.seconds).toFixed(0)).join(', ')} MB/s  (${cpuText(use)})`,
      );
    }
  }
  await checkNoUpstreamBlobGets(state, label);
  const mbPerSec = (path: PullPath) => median((runs.get(path) ?? []).map((r) => r.bytes / MB / r.seconds));
  state.raw['proxy-warm'] = Object.fromEntries([...runs].map(([path, r]) => [path.key, r]));
  recordCpu(state, 'warm pull', cpu);
  state.rows.push({
    group: 'proxy-warm',
    label: `warm pull ${sizeText(s.largeBlobBytes)}`,
    unit: 'MB/s',
    baselineLabel: 'local repo',
    baseline: mbPerSec(local),
    reference: mbPerSec(distribution),
    slipway: mbPerSec(slipway),
    target: slipwayAtLeast(0.95),
    digits: 0,
  });
}

/** Row 3: manifest GET by tag on a warm cache (autocannon), and how many upstream requests each GET costs. */
async function warmManifestRows(state: BenchState, image: Image): Promise<void> {
  const s = state.settings;
  const { distribution, slipway, local } = state.paths;
  const label = `warm manifest GET by tag, ${s.manifestConnections} conns`;
  console.log(`▶ ${label}`);
  const paths = [local, slipway, distribution];
  const results = new Map<PullPath, AutocannonResult[]>();
  const cpu = new Map<PullPath, PathCpu[]>();
  for (let round = 0; round < s.rounds; round++) {
    for (const path of orderFor(paths, round)) {
      const spec: AutocannonSpec = {
        mode: 'autocannon',
        url: `${path.base}/v2/${path.repository(image.repository)}/manifests/${image.tag}`,
        method: 'GET',
        connections: s.manifestConnections,
        headers: { accept: manifestAccept },
        warmupSec: s.warmupSec,
        durationSec: s.durationSec,
      };
      const load = await measure<AutocannonResult>(state, path, 'proxy-manifest', spec);
      const r = load.result;
      const use = pathCpu(path, load, r.clientCpuSec, r.durationSec);
      push(results, path, r);
      push(cpu, path, use);
      const bad = r.non2xx + r.errors + r.timeouts;
      console.log(
        `  ${path.label.padEnd(24)} ${Math.round(r.requestsPerSec).toLocaleString('en-US').padStart(7)} req/s  p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms  (${cpuText(use)})${bad ? `  ${bad} FAILED` : ''}`,
      );
      if (bad > 0)
        state.notes.push(
          `${label}: ${path.label} had ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`,
        );
    }
  }
  // Upstream requests per GET, counted exactly: sequential GETs with the counting proxy reset before,
  // once the requests the cache still had in hand when autocannon stopped have reached it.
  const perGet = new Map<PullPath, number>();
  for (const path of [distribution, slipway]) {
    await settle(path.proxy!);
    await path.proxy!.reset();
    for (let i = 0; i < s.manifestProbeGets; i++) await getManifest(path, image);
    const record = await path.proxy!.requests();
    perGet.set(path, record.length / s.manifestProbeGets);
    console.log(
      `  ${path.label.padEnd(24)} ${record.length} upstream request(s) for ${s.manifestProbeGets} manifest GETs by tag: ${[...new Set(record.map((r) => `${r.method} ${r.path.replace(/\/manifests\/.*/, '/manifests/…')} ${r.status}`))].join(', ') || 'none'}`,
    );
  }
  const rps = (path: PullPath) => mean((results.get(path) ?? []).map((r) => r.requestsPerSec));
  const p99 = (path: PullPath) => mean((results.get(path) ?? []).map((r) => r.latencyMs.p99));
  state.raw['proxy-manifest'] = {
    autocannon: Object.fromEntries([...results].map(([path, r]) => [path.key, r])),
    upstreamRequestsPerGet: Object.fromEntries([...perGet].map(([path, n]) => [path.key, n])),
  };
  recordCpu(state, 'warm manifest GET', cpu);
  state.rows.push(
    {
      group: 'proxy-manifest',
      label: 'warm manifest GET by tag',
      unit: 'req/s',
      baselineLabel: 'local repo',
      baseline: rps(local),
      reference: rps(distribution),
      slipway: rps(slipway),
      target: slipwayAtLeast(0.9),
      digits: 0,
    },
    {
      group: 'proxy-manifest',
      label: 'warm manifest GET by tag p99',
      unit: 'ms',
      baselineLabel: 'local repo',
      baseline: p99(local),
      reference: p99(distribution),
      slipway: p99(slipway),
      digits: 1,
      lowerIsBetter: true,
    },
    {
      group: 'proxy-manifest',
      label: 'upstream requests per warm manifest GET',
      unit: 'count',
      baselineLabel: '',
      baseline: undefined,
      reference: perGet.get(distribution),
      slipway: perGet.get(slipway),
      target: slipwayEquals(0),
      digits: 2,
      lowerIsBetter: true,
    },
  );
}

/** Row 4: many clients at once ask a cache for one blob it has not seen. */
async function concurrencyRows(state: BenchState): Promise<void> {
  const s = state.settings;
  const { bare, direct, distribution, slipway } = state.paths;
  const size = sizeText(s.herdBlobBytes);
  const label = `${s.herdClients} concurrent cold GETs of one ${size} blob (curl --parallel)`;
  console.log(`▶ ${label}`);
  const paths = [direct, distribution, slipway];
  const buffer = Buffer.allocUnsafe(s.herdBlobBytes);
  const wallSec = new Map<PullPath, number[]>();
  const gets = new Map<PullPath, number[]>();
  const fetchedMiB = new Map<PullPath, number[]>();
  const cpu = new Map<PullPath, PathCpu[]>();
  const rounds: unknown[] = [];
  for (let round = 0; round < s.herdRounds; round++) {
    const blob = freshBlob(buffer, `herd-${round}-${Date.now()}`);
    const digest = sha256(blob);
    const image = makeImage(`pull/herd-${round}`, [blob]);
    await pushImage(bare.base, image.repository, image);
    const perRound: Record<string, unknown> = { digest };
    for (const path of orderFor(paths, round)) {
      await path.proxy!.reset();
      await getManifest(path, image);
      const spec: StreamSpec = {
        mode: 'stream',
        url: blobUrl(path, image.repository, digest),
        parallel: s.herdClients,
        reps: 1,
        expectedBytes: blob.length,
        client: 'curl',
        warmup: false,
      };
      const load = await measure<RunsResult>(state, path, 'proxy-concurrency', spec);
      const run = load.result.runs[0]!;
      const use = pathCpu(path, load, run.clientCpuSec, run.seconds);
      const upstream = blobGets(await path.proxy!.requests(), digest);
      await verifyBlob(path, image.repository, blob);
      push(wallSec, path, run.seconds);
      push(gets, path, upstream.gets);
      push(fetchedMiB, path, upstream.bytes / MiB);
      push(cpu, path, use);
      const firstBytes = (run.transfers ?? []).map((t) => (t.firstByteSec ?? NaN) * 1000);
      perRound[path.key] = { run, upstream, cpu: use };
      console.log(
        `  ${path.label.padEnd(24)} wall ${run.seconds.toFixed(2)} s  first byte ${Math.min(...firstBytes).toFixed(0)}–${Math.max(...firstBytes).toFixed(0)} ms  upstream blob GETs ${upstream.gets} (${(upstream.bytes / MiB).toFixed(0)} MiB)  (${cpuText(use)})`,
      );
    }
    rounds.push(perRound);
  }
  state.raw['proxy-concurrency'] = rounds;
  recordCpu(state, `${s.herdClients} concurrent cold GETs`, cpu);
  const med = (map: Map<PullPath, number[]>, path: PullPath) => median(map.get(path) ?? []);
  const max = (map: Map<PullPath, number[]>, path: PullPath) => Math.max(...(map.get(path) ?? []));
  state.rows.push(
    {
      group: 'proxy-concurrency',
      label: `${s.herdClients} concurrent cold GETs of ${size}, wall time`,
      unit: 's',
      baselineLabel: 'direct',
      baseline: med(wallSec, direct),
      reference: med(wallSec, distribution),
      slipway: med(wallSec, slipway),
      digits: 2,
      lowerIsBetter: true,
    },
    {
      group: 'proxy-concurrency',
      label: `${s.herdClients} concurrent cold GETs of ${size}, upstream blob GETs (max)`,
      unit: 'count',
      baselineLabel: 'direct',
      baseline: max(gets, direct),
      reference: max(gets, distribution),
      slipway: max(gets, slipway),
      target: slipwayEquals(1),
      digits: 0,
      lowerIsBetter: true,
    },
    {
      group: 'proxy-concurrency',
      label: `${s.herdClients} concurrent cold GETs of ${size}, fetched from upstream (max)`,
      unit: 'MiB',
      baselineLabel: 'direct',
      baseline: max(fetchedMiB, direct),
      reference: max(fetchedMiB, distribution),
      slipway: max(fetchedMiB, slipway),
      digits: 0,
      lowerIsBetter: true,
    },
  );
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────

function slipwayConfig(upstreamUrl: string): string {
  return [
    'proxy:',
    '  upstreams:',
    `    - name: ${upstreamName}`,
    `      url: ${upstreamUrl}`,
    '      freshness: 5m',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const workDir = mkdtempSync(join(tmpdir(), 'slipway-pull-through-'));
  cleanups.push(() => {
    if (settings.keep) console.log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  });
  const startedAt = new Date();
  const loadBefore = loadavg();
  console.log(
    `Slipway pull-through bench (${settings.quick ? 'quick' : 'full'}): rows ${[...settings.rows].join(', ')}; work dir ${workDir}`,
  );

  console.log('starting the upstream, its counting proxies and both caches…');
  const upstream = await startDistribution(workDir, { name: 'upstream', label: 'upstream' });
  cleanups.push(upstream.stop);
  startedServers.push(upstream);
  const proxies = {} as Record<'direct' | 'distribution' | 'slipway', CountingProxy>;
  for (const key of ['direct', 'distribution', 'slipway'] as const) {
    proxies[key] = await startCountingProxy(upstream.base, workDir, `counting-proxy-${key}`);
    cleanups.push(proxies[key].stop);
  }
  // allSettled: when one fails to start, the other is still waited for, so that it gets stopped too.
  const started = await Promise.allSettled([
    startDistribution(workDir, {
      name: 'distribution-proxy',
      label: 'Distribution proxy',
      proxyRemoteUrl: proxies.distribution.base,
    }),
    startSlipway(settings.slipwayRoot, workDir, 'slipway', {
      configYaml: slipwayConfig(proxies.slipway.base),
    }),
  ]);
  for (const outcome of started) if (outcome.status === 'fulfilled') cleanups.push(outcome.value.stop);
  for (const outcome of started) if (outcome.status === 'rejected') throw outcome.reason;
  const [distribution, slipway] = started.map((o) => (o as PromiseFulfilledResult<RunningServer>).value) as [
    RunningServer,
    RunningServer,
  ];
  startedServers.push(distribution, slipway);
  for (const server of [upstream, distribution, slipway])
    console.log(`  ${server.label} ${server.version} at ${server.base} (pid ${server.pid})`);

  const identity = (remote: string) => remote;
  const paths: Record<PathKey, PullPath> = {
    bare: {
      key: 'bare',
      label: 'upstream, bare',
      base: upstream.base,
      repository: identity,
      upstreamPids: [upstream.pid],
    },
    direct: {
      key: 'direct',
      label: 'direct',
      base: proxies.direct.base,
      repository: identity,
      proxy: proxies.direct,
      upstreamPids: [upstream.pid, proxies.direct.pid],
    },
    distribution: {
      key: 'distribution',
      label: 'Distribution proxy',
      base: distribution.base,
      repository: identity,
      proxy: proxies.distribution,
      cachePid: distribution.pid,
      upstreamPids: [upstream.pid, proxies.distribution.pid],
    },
    slipway: {
      key: 'slipway',
      label: 'Slipway proxy',
      base: slipway.base,
      repository: (remote) => `${upstreamName}/${remote}`,
      proxy: proxies.slipway,
      cachePid: slipway.pid,
      upstreamPids: [upstream.pid, proxies.slipway.pid],
    },
    local: {
      key: 'local',
      label: 'Slipway local repo',
      base: slipway.base,
      repository: (remote) => `local/${remote}`,
      cachePid: slipway.pid,
      upstreamPids: [],
    },
  };

  const sampler = new MemorySampler(
    new Map([
      ['reference', distribution.pid],
      ['slipway', slipway.pid],
    ]),
  );
  cleanups.push(() => sampler.stop());
  quietWait.maxSec = settings.quietWaitSec;
  const state: BenchState = { settings, paths, rows: [], cpu: [], raw: {}, notes: [], sampler };
  const s = settings;

  await warmUp(state);
  if (s.rows.has('proxy-cold')) await coldRows(state);
  if (s.rows.has('proxy-cold-link')) await coldLinkRows(state);
  if (s.rows.has('proxy-warm') || s.rows.has('proxy-manifest')) {
    const image = await primeWarmImage(state);
    if (s.rows.has('proxy-warm')) await warmBlobRows(state, image);
    if (s.rows.has('proxy-manifest')) await warmManifestRows(state, image);
  }
  if (s.rows.has('proxy-concurrency')) await concurrencyRows(state);

  sampler.stop();
  const peak = (id: 'reference' | 'slipway', prefix: string) => {
    const bytes = sampler.maxInPhases(id, prefix);
    return bytes === undefined ? undefined : bytes / MiB;
  };
  for (const [group, what] of [
    ['proxy-cold', 'cold pulls'],
    ['proxy-cold-link', 'cold pulls over the link'],
    ['proxy-concurrency', 'concurrent cold GETs'],
  ] as const) {
    if (!s.rows.has(group)) continue;
    state.rows.push({
      group: 'memory',
      label: `peak RSS during ${what} (50 ms samples)`,
      unit: 'MiB',
      baselineLabel: '',
      baseline: undefined,
      reference: peak('reference', `${group}:distribution`),
      slipway: peak('slipway', `${group}:slipway`),
      digits: 0,
      lowerIsBetter: true,
    });
  }
  state.rows.push({
    group: 'memory',
    label: 'peak RSS, whole process life (VmHWM)',
    unit: 'MiB',
    baselineLabel: '',
    baseline: undefined,
    reference: (readStatus(distribution.pid)?.hwmBytes ?? 0) / MiB,
    slipway: (readStatus(slipway.pid)?.hwmBytes ?? 0) / MiB,
    digits: 0,
    lowerIsBetter: true,
  });

  const meta = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    mode: settings.quick ? 'quick' : 'full',
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg(),
    },
    node: process.version,
    distribution: distribution.version,
    slipway: slipway.version,
  };
  console.log('');
  console.log(
    `Results — ${meta.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${meta.machine.cpus} cores (${meta.machine.cpuModel}), Node ${meta.node}, Distribution ${meta.distribution}, Slipway ${meta.slipway}${settings.quick ? ', QUICK run' : ''}`,
  );
  console.log(formatCacheTable(state.rows));
  console.log('');
  console.log(
    `CPU while measuring (average cores busy of ${meta.machine.cpus}; upstream side = upstream registry + counting proxy, client = curl or autocannon):`,
  );
  console.log(formatCacheCpuTable(state.cpu));
  const waited = quietWaitNote();
  if (waited) state.notes.push(waited);
  for (const line of state.cpu) {
    if (line.cpu.other > 0.25)
      state.notes.push(
        `${line.row}, ${line.path}: other processes kept ${line.cpu.other.toFixed(2)} cores busy while measuring; treat these figures as disturbed`,
      );
  }
  if (state.notes.length > 0) {
    console.log('');
    for (const note of state.notes) console.log(`note: ${note}`);
  }

  mkdirSync(dirname(settings.out), { recursive: true });
  writeFileSync(
    settings.out,
    `${JSON.stringify(
      {
        meta,
        settings: { ...settings, rows: [...settings.rows] },
        rows: state.rows,
        cpu: state.cpu,
        notes: state.notes,
        memory: {
          phaseMax: Object.fromEntries([...sampler.phaseMax].map(([k, v]) => [k, Object.fromEntries(v)])),
        },
        raw: state.raw,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nJSON: ${relative(process.cwd(), settings.out)}`);
}

runMain(main);
