/**
 * The mirror row of bench/run.ts: mirroring one upstream repository of many tags, side by side, with
 * Slipway's mirror sync and with `skopeo sync --src docker --dest docker` into a plain Distribution,
 * a first run (every tag copied) and a no-change run each. Both read the same upstream Distribution,
 * each through its own counting proxy, so that the upstream requests of each are told apart.
 *
 * Slipway runs in this process: the mirror is defined through `POST /api/v1/mirrors`, and each sync is
 * a manual run started through its services (`mirrorRunner.run`), so the time measured is the sync's
 * own, without waiting in a queue for a worker.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ContainersWorkspace } from '../test/helpers/containers.ts';
import type { parseConfig as ParseConfig } from '../src/gateway/config.ts';
import type { startServer as StartServer } from '../src/gateway/server.ts';
import type { ProxiedRequest } from './lib/counting-proxy.ts';
import { cleanups, MiB, sum, waitForQuiet } from './lib/harness.ts';
import {
  mapLimit,
  mediaTypes,
  pushBlobMonolithic,
  putManifest,
  send,
  manifestAccept,
  sha256,
} from './lib/oci-client.ts';
import type { Row, Target } from './lib/report.ts';
import {
  startCountingProxy,
  startDistribution,
  type CountingProxy,
  type RunningServer,
} from './lib/servers.ts';

export interface MirrorBenchOptions {
  /** Tags in the upstream repository; every one is mirrored. */
  tagCount: number;
  workDir: string;
  /** The Slipway checkout to run in this process. */
  slipwayRoot: string;
}

export interface MirrorBenchResult {
  rows: Row[];
  notes: string[];
  raw: Record<string, unknown>;
}

const upstreamRepository = 'bench/upstream';
const mirrorRepository = 'bench/mirror';
/** skopeo sync names the destination after the source's last path component. */
const skopeoPrefix = 'skopeo';
const skopeoRepository = `${skopeoPrefix}/upstream`;
const admin = { user: 'admin', password: 'admin-password-1' };
const KiB = 1024;

// ── the upstream repository ──────────────────────────────────────────────────────────────────────

/** What gets pushed to the upstream: blobs, the images of indexes by digest, then the tags. */
interface ImageSet {
  blobs: Map<string, Buffer>;
  untagged: Array<{ digest: string; body: Buffer }>;
  tagged: Array<{ tag: string; body: Buffer; mediaType: string }>;
  /** Tag → digest of the manifest or index it names. */
  digests: Map<string, string>;
}

const sharedLayerCount = 8;
const sharedLayerBytes = 64 * KiB;
const ownLayerBytes = 16 * KiB;
/** Every this many tags, one names a two-platform index instead of an image. */
const indexEvery = 25;

/** Random bytes gzipped: a layer that registries and skopeo take as compressed, as it is. */
function layer(bytes: number): Buffer {
  return gzipSync(randomBytes(bytes), { level: 1 });
}

/**
 * Small distinct images: each has a layer of its own on one of a few shared base layers, and one tag
 * in `indexEvery` names an index of an amd64 and an arm64 image.
 */
function makeImageSet(tagCount: number): ImageSet {
  const set: ImageSet = { blobs: new Map(), untagged: [], tagged: [], digests: new Map() };
  const shared = Array.from({ length: sharedLayerCount }, () => layer(sharedLayerBytes));
  const descriptor = (blob: Buffer, mediaType: string) => {
    const digest = sha256(blob);
    set.blobs.set(digest, blob);
    return { mediaType, digest, size: blob.length };
  };
  const image = (tag: string, n: number, architecture: string) => {
    const layers = [shared[n % sharedLayerCount]!, layer(ownLayerBytes)];
    const config = Buffer.from(
      JSON.stringify({
        architecture,
        os: 'linux',
        config: { Labels: { 'org.example.tag': tag } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l)) },
        history: [{ created: '2025-01-01T00:00:00Z', created_by: `slipway mirror bench ${tag}` }],
      }),
    );
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociManifest,
        config: descriptor(config, mediaTypes.ociConfig),
        layers: layers.map((l) => descriptor(l, mediaTypes.ociLayer)),
      }),
    );
  };
  for (let n = 0; n < tagCount; n++) {
    const tag = `1.${String(n).padStart(3, '0')}`;
    if (n % indexEvery !== indexEvery - 1) {
      const body = image(tag, n, 'amd64');
      set.tagged.push({ tag, body, mediaType: mediaTypes.ociManifest });
      set.digests.set(tag, sha256(body));
      continue;
    }
    const children = ['amd64', 'arm64'].map((architecture) => {
      const body = image(tag, n, architecture);
      set.untagged.push({ digest: sha256(body), body });
      return { architecture, body };
    });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociIndex,
        manifests: children.map(({ architecture, body }) => ({
          mediaType: mediaTypes.ociManifest,
          digest: sha256(body),
          size: body.length,
          platform: { architecture, os: 'linux' },
        })),
      }),
    );
    set.tagged.push({ tag, body: index, mediaType: mediaTypes.ociIndex });
    set.digests.set(tag, sha256(index));
  }
  return set;
}

async function pushImageSet(base: string, set: ImageSet): Promise<void> {
  // Distribution ignores a body on the opening POST: POST, then PUT ?digest= with the body.
  await mapLimit([...set.blobs], 8, ([digest, blob]) =>
    pushBlobMonolithic(base, upstreamRepository, blob, digest, 'post-put'),
  );
  await mapLimit(set.untagged, 8, ({ digest, body }) =>
    putManifest(base, upstreamRepository, digest, body, mediaTypes.ociManifest),
  );
  await mapLimit(set.tagged, 8, ({ tag, body, mediaType }) =>
    putManifest(base, upstreamRepository, tag, body, mediaType),
  );
}

// ── Slipway, in this process ─────────────────────────────────────────────────────────────────────

type InProcessSlipway = Awaited<ReturnType<typeof StartServer>>;

async function startInProcessSlipway(root: string, dataDir: string): Promise<InProcessSlipway> {
  const load = (file: string) => import(pathToFileURL(join(root, file)).href);
  const { parseConfig } = (await load('src/gateway/config.ts')) as { parseConfig: typeof ParseConfig };
  const { startServer } = (await load('src/gateway/server.ts')) as { startServer: typeof StartServer };
  return startServer(
    parseConfig({
      listen: '127.0.0.1:0',
      dataDir,
      logLevel: 'warn',
      gc: { enabled: false },
      auth: { enabled: true, adminUser: admin.user, adminPassword: admin.password },
    }),
  );
}

/** The organization, its robot and the mirror of the upstream repository, through the API for the mirror. */
async function defineMirror(slipway: InProcessSlipway, upstreamUrl: string): Promise<void> {
  const { identity, authenticator } = slipway.services.auth;
  const root = await authenticator.authenticate(admin.user, admin.password);
  await identity.createOrganization(root, { name: 'bench' });
  await identity.createRobot(root, 'bench', 'mirror');
  const response = await fetch(`${slipway.url}/api/v1/mirrors`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      repository: mirrorRepository,
      upstream: { url: upstreamUrl, repository: upstreamRepository },
      robot: 'mirror',
      // Synced only when the bench starts it, never on a schedule in between.
      enabled: false,
    }),
  });
  if (response.status !== 201)
    throw new Error(`POST /api/v1/mirrors gave ${response.status}: ${await response.text()}`);
}

// ── measuring ────────────────────────────────────────────────────────────────────────────────────

interface TimedRun {
  seconds: number;
  upstream: ProxiedRequest[];
}

async function timed(proxy: CountingProxy, work: () => Promise<void>): Promise<TimedRun> {
  await waitForQuiet();
  await proxy.reset();
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  return { seconds, upstream: await proxy.requests() };
}

/** "HEAD manifest", "GET tag list", "GET blob", … */
function requestKind(request: ProxiedRequest): string {
  const path = request.path.split('?')[0]!;
  const what = /^\/v2\/?$/.test(path)
    ? '/v2/'
    : path.endsWith('/tags/list')
      ? 'tag list'
      : path.includes('/manifests/')
        ? 'manifest'
        : path.includes('/blobs/')
          ? 'blob'
          : path;
  return `${request.method} ${what}`;
}

function tally(requests: ProxiedRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const request of requests) counts[requestKind(request)] = (counts[requestKind(request)] ?? 0) + 1;
  return counts;
}

const describeTally = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');

const contentGets = (counts: Record<string, number>) =>
  (counts['GET manifest'] ?? 0) + (counts['GET blob'] ?? 0);

/** Checks that every tag of the skopeo destination names the upstream's digest. */
async function verifyDestination(base: string, repository: string, expected: Map<string, string>) {
  const wrong: string[] = [];
  await mapLimit([...expected], 8, async ([tag, digest]) => {
    const head = await send(`${base}/v2/${repository}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { accept: manifestAccept },
    });
    if (head.status !== 200 || head.headers['docker-content-digest'] !== digest) wrong.push(tag);
  });
  if (wrong.length > 0)
    throw new Error(`${repository}: ${wrong.length} tags missing or at another digest, e.g. ${wrong[0]}`);
}

function log(label: string, run: TimedRun): void {
  const bytes = sum(run.upstream.map((r) => r.bytes));
  console.log(
    `  ${label.padEnd(28)} ${run.seconds.toFixed(2).padStart(7)} s  upstream: ${run.upstream.length} requests, ${(bytes / MiB).toFixed(1)} MiB (${describeTally(tally(run.upstream))})`,
  );
}

const atMost = (value: number, unit = ''): Target => ({
  kind: 'abs-max',
  value,
  text: unit ? `≤ ${value} ${unit}` : `≤ ${value}`,
});

/** Everything the row runs against; `stop` stops it all (also registered as bench cleanups). */
interface MirrorBenchSetup {
  images: ImageSet;
  slipway: InProcessSlipway;
  workspace: ContainersWorkspace;
  /** skopeo's destination. */
  destination: RunningServer;
  /** The upstream as Slipway and as skopeo reach it. */
  proxies: { slipway: CountingProxy; skopeo: CountingProxy };
  stop(): Promise<void>;
}

async function setUp(options: MirrorBenchOptions): Promise<MirrorBenchSetup> {
  const { tagCount, workDir } = options;
  const stops: Array<() => Promise<void>> = [];
  const stopLater = <T extends { stop(): Promise<void> }>(thing: T): T => {
    stops.push(() => thing.stop());
    cleanups.push(() => thing.stop());
    return thing;
  };
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => {});
  };
  try {
    const images = makeImageSet(tagCount);
    // Slipway's first start in a fresh data directory (PGlite's initdb) takes longest: the rest is
    // set up and the upstream seeded meanwhile.
    const began = performance.now();
    const setup = await Promise.allSettled([
      startDistribution(workDir, { name: 'mirror-upstream' })
        .then(stopLater)
        .then(async (upstream) => {
          await pushImageSet(upstream.base, images);
          return upstream;
        }),
      startDistribution(workDir, { name: 'mirror-skopeo-dest' }).then(stopLater),
      startInProcessSlipway(options.slipwayRoot, join(workDir, 'mirror-slipway-data')).then((slipway) => {
        stopLater({ stop: () => slipway.close() });
        return slipway;
      }),
      ContainersWorkspace.create('slipway-bench-skopeo-').then((workspace) => {
        stopLater({ stop: () => workspace.remove() });
        return workspace;
      }),
    ]);
    for (const outcome of setup) if (outcome.status === 'rejected') throw outcome.reason;
    const [upstream, destination, slipway, workspace] = setup.map(
      (outcome) => (outcome as PromiseFulfilledResult<unknown>).value,
    ) as [RunningServer, RunningServer, InProcessSlipway, ContainersWorkspace];
    const proxies = {
      slipway: stopLater(await startCountingProxy(upstream.base, workDir, 'mirror-proxy-slipway')),
      skopeo: stopLater(await startCountingProxy(upstream.base, workDir, 'mirror-proxy-skopeo')),
    };
    await defineMirror(slipway, proxies.slipway.base);
    const bytes = sum([...images.blobs.values()].map((b) => b.length));
    const indexes = images.tagged.filter((t) => t.mediaType === mediaTypes.ociIndex).length;
    console.log(
      `  upstream ${upstreamRepository}: ${tagCount} tags (${indexes} of them indexes), ${images.blobs.size} blobs, ${(bytes / MiB).toFixed(1)} MiB; set up in ${((performance.now() - began) / 1000).toFixed(1)} s`,
    );
    return { images, slipway, workspace, destination, proxies, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A manual run of the mirror; throws unless every tag ended `expected` at the upstream's digest. */
async function slipwaySync(setup: MirrorBenchSetup, expected: 'copied' | 'unchanged'): Promise<void> {
  const { slipway, images } = setup;
  const run = await slipway.services.mirrorRunner.run(mirrorRepository, { trigger: 'manual' });
  const wrong = run.tags.filter((t) => t.outcome !== expected || t.digest !== images.digests.get(t.tag));
  if (run.state !== 'success' || run.tags.length !== images.digests.size || wrong.length > 0)
    throw new Error(
      `Slipway mirror run ended ${run.state} (${run.error ?? 'no error'}), ${run.tags.length} tags, ${wrong.length} not ${expected} at the upstream's digest: ${JSON.stringify(wrong.slice(0, 3))}`,
    );
}

/** `skopeo sync` of the whole upstream repository into the destination, indexes with every image. */
async function skopeoSync(setup: MirrorBenchSetup): Promise<void> {
  const { workspace, proxies, destination } = setup;
  await workspace.skopeo([
    'sync',
    '--all',
    '--preserve-digests',
    '--src',
    'docker',
    '--dest',
    'docker',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    `${new URL(proxies.skopeo.base).host}/${upstreamRepository}`,
    `${new URL(destination.base).host}/${skopeoPrefix}`,
  ]);
}

interface MirrorRuns {
  slipwayFirst: TimedRun;
  slipwayAgain: TimedRun;
  skopeoFirst: TimedRun;
  skopeoAgain: TimedRun;
}

function rowsOf(tagCount: number, runs: MirrorRuns): Row[] {
  const { slipwayFirst, slipwayAgain, skopeoFirst, skopeoAgain } = runs;
  const again = { slipway: tally(slipwayAgain.upstream), skopeo: tally(skopeoAgain.upstream) };
  const label = `mirror ${tagCount} tags (ref: skopeo sync)`;
  const row = (what: string, unit: string, reference: number, slipway: number, digits: number) => ({
    group: 'mirror',
    label: `${label}, ${what}`,
    unit,
    reference,
    slipway,
    digits,
    lowerIsBetter: true,
  });
  return [
    row('first run', 's', skopeoFirst.seconds, slipwayFirst.seconds, 2),
    { ...row('no-change run', 's', skopeoAgain.seconds, slipwayAgain.seconds, 2), target: atMost(10, 's') },
    row(
      'first run, upstream requests',
      'count',
      skopeoFirst.upstream.length,
      slipwayFirst.upstream.length,
      0,
    ),
    row(
      'no-change run, upstream requests',
      'count',
      skopeoAgain.upstream.length,
      slipwayAgain.upstream.length,
      0,
    ),
    {
      ...row(
        'no-change run, upstream manifest HEADs per tag',
        'count',
        (again.skopeo['HEAD manifest'] ?? 0) / tagCount,
        (again.slipway['HEAD manifest'] ?? 0) / tagCount,
        2,
      ),
      target: atMost(1, 'per tag'),
    },
    {
      ...row(
        'no-change run, upstream manifest and blob GETs',
        'count',
        contentGets(again.skopeo),
        contentGets(again.slipway),
        0,
      ),
      target: atMost(0),
    },
  ];
}

/** What Slipway's no-change run did upstream beyond the tag list and one manifest HEAD per tag. */
function noChangeExcess(tagCount: number, run: TimedRun): string | undefined {
  const counts = tally(run.upstream);
  const expected = new Set(['GET tag list', 'HEAD manifest']);
  const excess =
    (counts['HEAD manifest'] ?? 0) > tagCount || Object.keys(counts).some((kind) => !expected.has(kind));
  return excess
    ? `mirror: Slipway's no-change run did more upstream than a tag list and one HEAD per tag: ${describeTally(counts)}`
    : undefined;
}

const summaryOf = (run: TimedRun) => ({
  seconds: run.seconds,
  requests: tally(run.upstream),
  bytes: sum(run.upstream.map((r) => r.bytes)),
});

/**
 * Sets up the upstream, Slipway and skopeo's destination, then measures, in this order (ABBA):
 * Slipway's first run, skopeo's first run, skopeo's no-change run, Slipway's no-change run.
 */
export async function benchMirror(options: MirrorBenchOptions): Promise<MirrorBenchResult> {
  const { tagCount } = options;
  const setup = await setUp(options);
  try {
    const { proxies, destination, images } = setup;
    console.log(`▶ mirror ${tagCount} tags: Slipway mirror sync vs skopeo sync into Distribution`);
    const slipwayFirst = await timed(proxies.slipway, () => slipwaySync(setup, 'copied'));
    log('Slipway, first run', slipwayFirst);
    const skopeoFirst = await timed(proxies.skopeo, () => skopeoSync(setup));
    await verifyDestination(destination.base, skopeoRepository, images.digests);
    log('skopeo sync, first run', skopeoFirst);
    const skopeoAgain = await timed(proxies.skopeo, () => skopeoSync(setup));
    await verifyDestination(destination.base, skopeoRepository, images.digests);
    log('skopeo sync, no-change run', skopeoAgain);
    const slipwayAgain = await timed(proxies.slipway, () => slipwaySync(setup, 'unchanged'));
    log('Slipway, no-change run', slipwayAgain);

    const runs = { slipwayFirst, slipwayAgain, skopeoFirst, skopeoAgain };
    const excess = noChangeExcess(tagCount, slipwayAgain);
    return {
      rows: rowsOf(tagCount, runs),
      notes: excess ? [excess] : [],
      raw: {
        tagCount,
        upstreamBlobs: images.blobs.size,
        upstreamBytes: sum([...images.blobs.values()].map((b) => b.length)),
        ...Object.fromEntries(Object.entries(runs).map(([name, run]) => [name, summaryOf(run)])),
      },
    };
  } finally {
    await setup.stop();
  }
}
