/**
 * The builds row of bench/run.ts: how fast a git push becomes a running build, and how fast a line a
 * builder writes reaches someone following the log.
 *
 * Slipway runs in this process, on a Redis of its own, with a BuilderWorker that talks to it over the
 * builder protocol (HTTP), as `slipway builder` does. Two measurements:
 *
 * - Webhook → build start: signed custom-git deliveries (`POST /webhooks/git/{id}`), one commit each,
 *   timed from sending the delivery to the builder holding the build (its claim answered: the build is
 *   `cloning` and `build_start` is written). The builds clone from a path that does not exist, so each
 *   ends at once. Floor: a bare BullMQ `Queue.add` → `Worker` on the same Redis.
 * - Log line → follower: a BuildLogWriter writes timestamped lines for a build, and a client follows
 *   `GET /api/v1/builds/{id}/logs` as Server-Sent Events. Floor: XADD and XREAD BLOCK on the same Redis.
 *
 * Writer, gateway, builder and followers share this process's event loop and one clock, so every time
 * is `performance.now()` of one process.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTick, setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { BuildControl, BuilderAssignment } from '../src/builder/build-control.ts';
import type { BuildEnd } from '../src/builder/build-store.ts';
import type { HttpBuildControl as HttpBuildControlClass } from '../src/builder/builder-http-control.ts';
import type { BuilderWorker as BuilderWorkerClass } from '../src/builder/builder-worker.ts';
import type { Executor } from '../src/builder/executors/index.ts';
import type { BuildLogWriter as BuildLogWriterClass } from '../src/builder/logs/writer.ts';
import type { parseConfig as ParseConfig } from '../src/gateway/config.ts';
import type { startServer as StartServer } from '../src/gateway/server.ts';
import type { signCustomPayload as SignCustomPayload } from '../src/triggers/custom-git.ts';
import { startThrowawayRedis } from '../test/helpers/redis.ts';
import { cleanups, median, waitForQuiet } from './lib/harness.ts';
import type { Row } from './lib/report.ts';

export interface BuildsBenchOptions {
  quick: boolean;
  workDir: string;
  /** The Slipway checkout to run in this process. */
  slipwayRoot: string;
}

export interface BuildsBenchResult {
  rows: Row[];
  notes: string[];
  raw: Record<string, unknown>;
}

const admin = { user: 'admin', password: 'admin-password-1' };
const builderSecret = 'bench-builder-secret-0123456789abcdef0123';
const repository = 'bench/app';
const burstSize = 20;

// ── statistics ───────────────────────────────────────────────────────────────────────────────────

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Spread {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function spread(values: number[]): Spread {
  return {
    n: values.length,
    p50: median(values),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max: Math.max(...values),
  };
}

const ms = (value: number) => `${value.toFixed(2)} ms`;
const describe = (s: Spread) => `p50 ${ms(s.p50)}  p95 ${ms(s.p95)}  p99 ${ms(s.p99)}  max ${ms(s.max)}`;

// ── Slipway and its builder, in this process ─────────────────────────────────────────────────────

type InProcessSlipway = Awaited<ReturnType<typeof StartServer>>;

interface Modules {
  parseConfig: typeof ParseConfig;
  startServer: typeof StartServer;
  HttpBuildControl: typeof HttpBuildControlClass;
  BuilderWorker: typeof BuilderWorkerClass;
  BuildLogWriter: typeof BuildLogWriterClass;
  signCustomPayload: typeof SignCustomPayload;
}

async function loadModules(root: string): Promise<Modules> {
  const load = (file: string) => import(pathToFileURL(join(root, file)).href);
  return {
    ...((await load('src/gateway/config.ts')) as Pick<Modules, 'parseConfig'>),
    ...((await load('src/gateway/server.ts')) as Pick<Modules, 'startServer'>),
    ...((await load('src/builder/builder-http-control.ts')) as Pick<Modules, 'HttpBuildControl'>),
    ...((await load('src/builder/builder-worker.ts')) as Pick<Modules, 'BuilderWorker'>),
    ...((await load('src/builder/logs/writer.ts')) as Pick<Modules, 'BuildLogWriter'>),
    ...((await load('src/triggers/custom-git.ts')) as Pick<Modules, 'signCustomPayload'>),
  };
}

/** When the builder asked to claim each build, when the claim was answered, and when it finished. */
interface ClaimTimes {
  requested?: number;
  claimed?: number;
  finished?: number;
}

/** The builder's HTTP control, noting the moments of each claim and end. */
class TimedControl implements BuildControl {
  readonly times = new Map<string, ClaimTimes>();
  readonly #inner: HttpBuildControlClass;
  readonly #waiters = new Set<() => void>();

  constructor(inner: HttpBuildControlClass) {
    this.#inner = inner;
  }

  #at(id: string): ClaimTimes {
    let times = this.times.get(id);
    if (!times) this.times.set(id, (times = {}));
    return times;
  }

  #notify(): void {
    for (const wake of this.#waiters) wake();
  }

  /** Resolves once `done` holds, checked at every claim and end. */
  async until(done: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      if (performance.now() > deadline) throw new Error(`builds bench: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 250);
        this.#waiters.add(wake);
      });
    }
  }

  hello() {
    return this.#inner.hello();
  }

  async claim(buildId: string, builder: string): Promise<BuilderAssignment | null> {
    this.#at(buildId).requested = performance.now();
    const assignment = await this.#inner.claim(buildId, builder);
    if (assignment) this.#at(buildId).claimed = performance.now();
    this.#notify();
    return assignment;
  }

  heartbeat(buildId: string, builder: string) {
    return this.#inner.heartbeat(buildId, builder);
  }

  phase(...args: Parameters<BuildControl['phase']>) {
    return this.#inner.phase(...args);
  }

  async finish(buildId: string, builder: string, end: BuildEnd): Promise<boolean> {
    const done = await this.#inner.finish(buildId, builder, end);
    this.#at(buildId).finished = performance.now();
    this.#notify();
    return done;
  }
}

/**
 * Builds nothing and reports an image: the row ends at the claim. A build has to succeed, though: a
 * trigger whose builds fail 5 times in a row disables itself.
 */
const noBuildExecutor: Executor = {
  build: () =>
    Promise.resolve({
      digest: `sha256:${'0'.repeat(64)}`,
      pushed: [],
      durations: { build: 0, push: 0 },
    }),
};

/**
 * The git server: a bare repository whose `main` gets new empty commits (with a Dockerfile) before
 * each delivery, as a push would, so that every build checks out a commit of its own.
 */
class GitSource {
  readonly url: string;
  readonly #dir: string;
  readonly #tree: string;
  #tip: string | undefined;

  constructor(dir: string) {
    this.#dir = dir;
    this.url = pathToFileURL(dir).href;
    this.#git(['init', '--quiet', '--bare', dir]);
    const blob = this.#git(['hash-object', '-w', '--stdin'], 'FROM scratch\n');
    this.#tree = this.#git(['mktree'], `100644 blob ${blob}\tDockerfile\n`);
  }

  /** `count` new commits on main; their ids, oldest first. */
  commits(count: number): string[] {
    const made: string[] = [];
    for (let n = 0; n < count; n++) {
      const parent = this.#tip ? ['-p', this.#tip] : [];
      this.#tip = this.#git([
        'commit-tree',
        this.#tree,
        ...parent,
        '-m',
        `bench ${randomBytes(4).toString('hex')}`,
      ]);
      made.push(this.#tip);
    }
    if (this.#tip) this.#git(['update-ref', 'refs/heads/main', this.#tip]);
    return made;
  }

  #git(args: string[], input?: string): string {
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@example.com',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@example.com',
    };
    const cwd = args[0] === 'init' ? undefined : this.#dir;
    return execFileSync('git', args, { cwd, env, input, encoding: 'utf8' }).trim();
  }
}

/** `stop` for the bench's own end and for its cleanups after a failure: it runs once. */
function onlyOnce(stop: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= stop());
}

interface Setup {
  modules: Modules;
  slipway: InProcessSlipway;
  redisUrl: string;
  git: GitSource;
  webhookUrl: string;
  webhookSecret: string;
  authorization: string;
  stop(): Promise<void>;
}

async function setUp(options: BuildsBenchOptions): Promise<Setup> {
  const stops: Array<() => Promise<void>> = [];
  const stopLater = (stop: () => Promise<void>) => {
    const once = onlyOnce(stop);
    stops.push(once);
    cleanups.push(once);
  };
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => {});
    stops.length = 0;
  };
  try {
    const modules = await loadModules(options.slipwayRoot);
    const git = new GitSource(join(options.workDir, 'builds-git', 'app.git'));
    // A Redis of its own: a shared one would carry other work's commands between ours.
    const redis = await startThrowawayRedis();
    stopLater(() => redis.stop());
    const slipway = await modules.startServer(
      modules.parseConfig({
        listen: '127.0.0.1:0',
        dataDir: join(options.workDir, 'builds-slipway-data'),
        logLevel: 'warn',
        gc: { enabled: false },
        redis: { url: redis.url },
        auth: { enabled: true, adminUser: admin.user, adminPassword: admin.password },
        // Only the bench's builder takes builds, not one inside the gateway.
        builds: { builderSecret, localBuilder: false },
      }),
    );
    stopLater(() => slipway.close());
    const { identity, authenticator } = slipway.services.auth;
    const root = await authenticator.authenticate(admin.user, admin.password);
    await identity.createOrganization(root, { name: 'bench' });
    await identity.createRepository(root, repository);
    const authorization = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`;
    const response = await fetch(`${slipway.url}/api/v1/repositories/${repository}/triggers`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'custom', cloneUrl: git.url }),
    });
    const created = (await response.json()) as { webhookUrl?: string; webhookSecret?: string };
    if (response.status !== 201 || !created.webhookUrl || !created.webhookSecret)
      throw new Error(`creating the build trigger gave ${response.status}: ${JSON.stringify(created)}`);
    return {
      modules,
      slipway,
      redisUrl: redis.url,
      git,
      webhookUrl: created.webhookUrl,
      webhookSecret: created.webhookSecret,
      authorization,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A BuilderWorker over HTTP, as `slipway builder` runs it; stopped with the returned function. */
async function startBuilder(setup: Setup, concurrency: number) {
  const { HttpBuildControl, BuilderWorker } = setup.modules;
  const http = new HttpBuildControl({ gateway: setup.slipway.url, secret: builderSecret });
  const control = new TimedControl(http);
  const worker = new BuilderWorker({
    name: 'bench-builder',
    control,
    redis: setup.slipway.services.redis,
    executor: noBuildExecutor,
    executorName: 'none',
    concurrency,
    logger: pino({ level: 'warn' }),
    workDir: join(setup.slipway.services.config.dataDir, 'builder'),
  });
  await worker.start();
  const stop = onlyOnce(async () => {
    await worker.stop();
    await http.close();
  });
  cleanups.push(stop);
  return { control, stop };
}

/** A signed custom-git delivery of `commit`: the build's id, and when it was sent and answered. */
async function deliver(
  setup: Setup,
  commit: string,
): Promise<{ buildId: string; sent: number; answered: number }> {
  const body = JSON.stringify({ commit, ref: 'refs/heads/main', cloneUrl: setup.git.url });
  const headers = {
    'content-type': 'application/json',
    'x-slipway-signature-256': await setup.modules.signCustomPayload(setup.webhookSecret, body),
  };
  const sent = performance.now();
  const response = await fetch(setup.webhookUrl, { method: 'POST', headers, body });
  const answer = (await response.json()) as { id?: string };
  const answered = performance.now();
  if (response.status !== 202 || !answer.id)
    throw new Error(`the webhook answered ${response.status}: ${JSON.stringify(answer)}`);
  return { buildId: answer.id, sent, answered };
}

// ── webhook → build start ────────────────────────────────────────────────────────────────────────

interface StartSample {
  /** Webhook sent → 202 received. */
  answer: number;
  /** Webhook sent → the builder asks to claim the build (it took the queue's job). */
  taken: number;
  /** The builder's claim request → its answer. */
  claim: number;
  /** Webhook sent → the builder holds the build. */
  total: number;
}

async function webhookToStart(setup: Setup, control: TimedControl, count: number, parallel: number) {
  const samples: StartSample[] = [];
  // Once per series: waiting before every delivery would pause at least a second each time.
  await waitForQuiet();
  for (let done = 0; done < count; done += parallel) {
    const commits = setup.git.commits(Math.min(parallel, count - done));
    const deliveries = await Promise.all(commits.map((commit) => deliver(setup, commit)));
    const ids = deliveries.map((d) => d.buildId);
    // Every build of this round claimed and ended before the next round: their checkouts cost CPU.
    await control.until(
      () => ids.every((id) => control.times.get(id)?.finished !== undefined),
      `${ids.length} builds to be claimed and to end`,
    );
    for (const { buildId, sent, answered } of deliveries) {
      const times = control.times.get(buildId)!;
      if (times.claimed === undefined) throw new Error(`build ${buildId} ended without being claimed`);
      samples.push({
        answer: answered - sent,
        taken: times.requested! - sent,
        claim: times.claimed - times.requested!,
        total: times.claimed - sent,
      });
    }
  }
  return samples;
}

/** The floor: a BullMQ job added and a Worker of the same Redis starting it, nothing else. */
async function bullmqFloor(redisUrl: string, count: number, parallel: number): Promise<number[]> {
  // BullMQ leaves connections it was given open when it closes.
  const connections: Redis[] = [];
  const connection = () => {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: null });
    connections.push(client);
    return client;
  };
  const prefix = `bench-floor-${Date.now()}`;
  const queue = new Queue('floor', { connection: connection(), prefix });
  const started = new Map<string, number>();
  let wake: (() => void) | undefined;
  const worker = new Worker(
    'floor',
    async (job) => {
      started.set(job.id!, performance.now());
      wake?.();
    },
    { connection: connection(), prefix, concurrency: parallel, maxStalledCount: 0 },
  );
  await worker.waitUntilReady();
  try {
    const samples: number[] = [];
    await waitForQuiet();
    for (let done = 0; done < count; done += parallel) {
      const ids = Array.from({ length: Math.min(parallel, count - done) }, () =>
        randomBytes(8).toString('hex'),
      );
      const added = new Map<string, number>();
      await Promise.all(
        ids.map(async (id) => {
          added.set(id, performance.now());
          await queue.add(
            'build',
            { buildId: id },
            { jobId: id, removeOnComplete: true, removeOnFail: true },
          );
        }),
      );
      while (!ids.every((id) => started.has(id))) await new Promise<void>((resolve) => (wake = resolve));
      for (const id of ids) samples.push(started.get(id)! - added.get(id)!);
    }
    return samples;
  } finally {
    await worker.close();
    await queue.close();
    for (const client of connections) client.disconnect();
  }
}

// ── log line → follower ──────────────────────────────────────────────────────────────────────────

/** A line's text carries the moment it was written, so that its follower can tell its age. */
const lineText = (n: number) => `bench line ${n} written at ${performance.now().toFixed(3)}`;
const writtenAt = (text: string) => Number(text.slice(text.lastIndexOf(' ') + 1));

interface LogRun {
  latencies: number[];
  /** First line written → last line received. */
  seconds: number;
}

/** How lines are produced: one every `intervalMs`, or `burst` per turn of the event loop, at once. */
type Pace = { kind: 'interval'; intervalMs: number } | { kind: 'burst'; perTurn: number };

async function produce(count: number, pace: Pace, write: (text: string) => void): Promise<void> {
  const begin = performance.now();
  for (let n = 0; n < count; n++) {
    if (pace.kind === 'interval') {
      const wait = begin + n * pace.intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
    } else if (n > 0 && n % pace.perTurn === 0) await nextTick();
    write(lineText(n));
  }
}

/** A client of the gateway's SSE route: calls `onEntry` for each event, until the stream closes. */
async function followSse(
  url: string,
  authorization: string,
  onEntry: (entry: { type: string; text?: string }) => void,
): Promise<{ done: Promise<void> }> {
  const response = await fetch(url, { headers: { authorization, accept: 'text/event-stream' } });
  if (response.status !== 200 || !response.body)
    throw new Error(`following ${url} gave ${response.status}: ${await response.text()}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const done = (async () => {
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += value;
      let boundary;
      while ((boundary = buffered.indexOf('\n\n')) >= 0) {
        const event = buffered.slice(0, boundary);
        buffered = buffered.slice(boundary + 2);
        const data = event.split('\n').find((line) => line.startsWith('data: '));
        if (data) onEntry(JSON.parse(data.slice(6)) as { type: string; text?: string });
      }
    }
  })();
  return { done };
}

/**
 * Slipway: a fresh waiting build (no builder runs by now), a BuildLogWriter on a Redis client of its
 * own as a builder has, and an SSE follower. A phase entry first, so that the follower is blocked in
 * XREAD when the measured lines begin; the `end` entry closes the stream.
 */
async function slipwayLog(setup: Setup, count: number, pace: Pace): Promise<LogRun> {
  const { buildId } = await deliver(setup, setup.git.commits(1)[0]!);
  const { services } = setup.slipway;
  const redis = services.redis.connect();
  const writer = new setup.modules.BuildLogWriter({
    redis,
    keyPrefix: services.buildLogs.keyPrefix,
    buildId,
  });
  const latencies: number[] = [];
  let lastReceived = 0;
  let ready: () => void = () => {};
  const following = new Promise<void>((resolve) => (ready = resolve));
  try {
    const { done } = await followSse(
      `${setup.slipway.url}/api/v1/builds/${buildId}/logs`,
      setup.authorization,
      (entry) => {
        if (entry.type === 'phase') ready();
        if (entry.type !== 'line') return;
        lastReceived = performance.now();
        latencies.push(lastReceived - writtenAt(entry.text!));
      },
    );
    writer.phase('cloning');
    await following;
    await sleep(50);
    await waitForQuiet();
    const begin = performance.now();
    await produce(count, pace, (text) => writer.line('stdout', text));
    await writer.end('complete');
    await done;
    if (latencies.length !== count)
      throw new Error(`the follower received ${latencies.length} of ${count} lines`);
    return { latencies, seconds: (lastReceived - begin) / 1000 };
  } finally {
    redis.disconnect();
  }
}

/** The floor: XADD of each line as it is written, and a reader in XREAD BLOCK, on the same Redis. */
async function redisFloor(redisUrl: string, count: number, pace: Pace): Promise<LogRun> {
  const writer = new Redis(redisUrl);
  const reader = new Redis(redisUrl);
  const key = `bench-floor-log-${randomBytes(6).toString('hex')}`;
  const latencies: number[] = [];
  let lastReceived = 0;
  try {
    const first = await writer.xadd(key, '*', 't', 'phase');
    const reading = (async () => {
      let after = first!;
      for (;;) {
        const reply = await reader.xread('COUNT', 1000, 'BLOCK', 5000, 'STREAMS', key, after);
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          after = id;
          if (fields[1] === 'end') return;
          lastReceived = performance.now();
          latencies.push(lastReceived - writtenAt(fields[3]!));
        }
      }
    })();
    await sleep(50);
    await waitForQuiet();
    const begin = performance.now();
    await produce(count, pace, (text) => void writer.xadd(key, '*', 't', 'line', 'x', text));
    await writer.xadd(key, '*', 't', 'end');
    await reading;
    if (latencies.length !== count)
      throw new Error(`the XREAD reader received ${latencies.length} of ${count}`);
    return { latencies, seconds: (lastReceived - begin) / 1000 };
  } finally {
    await writer.del(key).catch(() => {});
    writer.disconnect();
    reader.disconnect();
  }
}

// ── the row ──────────────────────────────────────────────────────────────────────────────────────

const row = (
  label: string,
  unit: string,
  floor: number | undefined,
  slipway: number,
  digits: number,
  lowerIsBetter = true,
): Row => ({ group: 'builds', label, unit, reference: floor, slipway, digits, lowerIsBetter });

export async function benchBuilds(options: BuildsBenchOptions): Promise<BuildsBenchResult> {
  const { quick } = options;
  const sequentialCount = quick ? 15 : 50;
  const bursts = quick ? 1 : 3;
  const slowLines = quick ? 100 : 500;
  const chattyLines = quick ? 2000 : 10_000;
  const slowPace: Pace = { kind: 'interval', intervalMs: 20 };
  const chattyPace: Pace = { kind: 'burst', perTurn: 100 };

  const began = performance.now();
  const setup = await setUp(options);
  const notes: string[] = [];
  try {
    console.log(
      `  Slipway in this process, with a builder over the builder protocol (concurrency ${burstSize}); set up in ${((performance.now() - began) / 1000).toFixed(1)} s`,
    );
    console.log(`▶ builds: webhook → build start (custom git deliveries, builder claim)`);
    const builder = await startBuilder(setup, burstSize);
    // Unmeasured: the first deliveries and claims compile their code paths.
    await webhookToStart(setup, builder.control, 3, 1);
    const sequential = await webhookToStart(setup, builder.control, sequentialCount, 1);
    const burst = await webhookToStart(setup, builder.control, bursts * burstSize, burstSize);
    await builder.stop();
    await bullmqFloor(setup.redisUrl, 3, 1);
    const floorSequential = await bullmqFloor(setup.redisUrl, sequentialCount, 1);
    const floorBurst = await bullmqFloor(setup.redisUrl, bursts * burstSize, burstSize);
    const stats = (samples: StartSample[]) => ({
      total: spread(samples.map((s) => s.total)),
      answer: spread(samples.map((s) => s.answer)),
      taken: spread(samples.map((s) => s.taken)),
      claim: spread(samples.map((s) => s.claim)),
    });
    const start = { sequential: stats(sequential), burst: stats(burst) };
    const floorStart = { sequential: spread(floorSequential), burst: spread(floorBurst) };
    for (const [name, s, floor] of [
      ['sequential', start.sequential, floorStart.sequential],
      [`bursts of ${burstSize}`, start.burst, floorStart.burst],
    ] as const) {
      console.log(`  ${name} (${s.total.n}): webhook → build start ${describe(s.total)}`);
      console.log(`    webhook answered (202)        ${describe(s.answer)}`);
      console.log(`    webhook → builder takes job   ${describe(s.taken)}`);
      console.log(`    builder's claim request       ${describe(s.claim)}`);
      console.log(`    floor: BullMQ add → worker    ${describe(floor)}`);
    }

    console.log(`▶ builds: log line → SSE follower (floor: XADD → XREAD BLOCK)`);
    // Unmeasured warm-up of both paths.
    await slipwayLog(setup, 50, chattyPace);
    await redisFloor(setup.redisUrl, 50, chattyPace);
    const slow = await slipwayLog(setup, slowLines, slowPace);
    const slowFloor = await redisFloor(setup.redisUrl, slowLines, slowPace);
    const chattyFloor = await redisFloor(setup.redisUrl, chattyLines, chattyPace);
    const chatty = await slipwayLog(setup, chattyLines, chattyPace);
    const log = {
      slow: spread(slow.latencies),
      slowFloor: spread(slowFloor.latencies),
      chatty: spread(chatty.latencies),
      chattyFloor: spread(chattyFloor.latencies),
    };
    const rate = { chatty: chattyLines / chatty.seconds, chattyFloor: chattyLines / chattyFloor.seconds };
    console.log(`  1 line / 20 ms, ${slowLines} lines:  Slipway ${describe(log.slow)}`);
    console.log(`  ${' '.repeat(27)}floor   ${describe(log.slowFloor)}`);
    console.log(
      `  ${chattyLines} lines at once (${chattyPace.perTurn} per event-loop turn): Slipway ${Math.round(rate.chatty).toLocaleString('en-US')} lines/s, ${describe(log.chatty)}`,
    );
    console.log(
      `  ${' '.repeat(27)}floor   ${Math.round(rate.chattyFloor).toLocaleString('en-US')} lines/s, ${describe(log.chattyFloor)}`,
    );

    const ref = '(ref: bare BullMQ)';
    const refLog = '(ref: bare XADD/XREAD)';
    const rows: Row[] = [
      row(
        `webhook → build start, sequential, p50 ${ref}`,
        'ms',
        floorStart.sequential.p50,
        start.sequential.total.p50,
        1,
      ),
      row(
        `webhook → build start, sequential, p95 ${ref}`,
        'ms',
        floorStart.sequential.p95,
        start.sequential.total.p95,
        1,
      ),
      row(`  webhook answered (202), p50`, 'ms', undefined, start.sequential.answer.p50, 1),
      row(`  webhook → the builder takes the job, p50`, 'ms', undefined, start.sequential.taken.p50, 1),
      row(`  the builder's claim request, p50`, 'ms', undefined, start.sequential.claim.p50, 1),
      row(
        `webhook → build start, bursts of ${burstSize}, p50 ${ref}`,
        'ms',
        floorStart.burst.p50,
        start.burst.total.p50,
        1,
      ),
      row(
        `webhook → build start, bursts of ${burstSize}, p95 ${ref}`,
        'ms',
        floorStart.burst.p95,
        start.burst.total.p95,
        1,
      ),
      row(`log line → SSE follower, 1 line/20 ms, p50 ${refLog}`, 'ms', log.slowFloor.p50, log.slow.p50, 2),
      row(`log line → SSE follower, 1 line/20 ms, p95 ${refLog}`, 'ms', log.slowFloor.p95, log.slow.p95, 2),
      row(`log line → SSE follower, 1 line/20 ms, p99 ${refLog}`, 'ms', log.slowFloor.p99, log.slow.p99, 2),
      row(
        `log lines delivered, ${chattyLines} at once ${refLog}`,
        'lines/s',
        rate.chattyFloor,
        rate.chatty,
        0,
        false,
      ),
      row(
        `log line → SSE follower, ${chattyLines} at once, p50 ${refLog}`,
        'ms',
        log.chattyFloor.p50,
        log.chatty.p50,
        1,
      ),
      row(
        `log line → SSE follower, ${chattyLines} at once, p95 ${refLog}`,
        'ms',
        log.chattyFloor.p95,
        log.chatty.p95,
        1,
      ),
      row(
        `log line → SSE follower, ${chattyLines} at once, p99 ${refLog}`,
        'ms',
        log.chattyFloor.p99,
        log.chatty.p99,
        1,
      ),
    ];
    return {
      rows,
      notes,
      raw: {
        builderConcurrency: burstSize,
        webhookToStart: start,
        bullmqFloor: floorStart,
        log,
        linesPerSecond: rate,
        samples: { sequential, burst },
      },
    };
  } finally {
    await setup.stop();
  }
}
