import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBuildControl } from '../../../src/builder/builder-http-control.ts';
import { builderKey } from '../../../src/builder/builder-presence.ts';
import { BuilderWorker } from '../../../src/builder/builder-worker.ts';
import { BuildahExecutor } from '../../../src/builder/executors/index.ts';
import type { BuilderResource } from '../../../src/cli/commands/builder.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { basicOf, IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';
import { startStallingServer, type StallingServer } from '../../helpers/stalling-server.ts';
import { requireTool, waitFor } from '../../helpers/tools.ts';

const builderSecret = 'builder-secret-0123456789abcdef0123456789';
const commit = '3f786850e387550fdab836ed7e6dc881de23001b';
const version = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * GET /api/v1/builders with a real BuilderWorker in this process: its builds clone from a git remote
 * that never answers, so they stay `cloning` while the test looks.
 */
describe('/api/v1/builders', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  let remote: StallingServer;
  let workDir: string;
  let redis: Redis;
  let worker: BuilderWorker | undefined;

  const listed = async () => {
    const answer = await root.get<{ builders: BuilderResource[] }>('/builders');
    expect(answer.status).toBe(200);
    return answer.body.builders;
  };

  const metrics = async () => (await fetch(`${slipway.url}/metrics`)).text();

  const stalledBuild = () =>
    slipway.services.buildService.manual(
      { repository: 'acme/app', cloneUrl: `${remote.url}/acme/app.git`, commit, tags: ['slow'] },
      null,
    );

  beforeAll(async () => {
    slipway = await startSecuredSlipway({ config: { builds: { builderSecret } } });
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    remote = await startStallingServer();
    workDir = await mkdtemp(join(tmpdir(), 'slipway-builders-api-'));
    redis = slipway.services.redis.connect();
  });

  afterAll(async () => {
    await worker?.stop();
    redis?.disconnect();
    await remote?.close();
    await slipway?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('is for superusers: 401 without credentials, 403 for other accounts', async () => {
    const fixtures = await IdentityFixtures.of(slipway);
    const alice = await fixtures.user('alice');
    const anonymous = await ApiCaller.as(slipway, undefined).get('/builders');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error?.code).toBe('SLW_ERR_UNAUTHENTICATED');
    const user = await ApiCaller.as(slipway, basicOf(alice)).get('/builders');
    expect(user.status).toBe(403);
    expect(user.body.error?.code).toBe('SLW_ERR_FORBIDDEN');
  });

  it('lists a builder by what its announcement holds, null for what it does not say', async () => {
    const prefix = slipway.services.buildLogs.keyPrefix;
    const key = builderKey(prefix, 'older-builder');
    const startedAt = new Date().toISOString();
    await redis.set(
      key,
      JSON.stringify({ name: 'older-builder', concurrency: 3, executor: 'docker', startedAt, running: [] }),
      'EX',
      30,
    );
    await redis.zadd(`${prefix}:builders`, Date.now() + 30_000, 'older-builder');
    try {
      expect((await listed()).find((builder) => builder.name === 'older-builder')).toEqual({
        name: 'older-builder',
        state: 'live',
        executor: 'docker',
        concurrency: 3,
        host: null,
        pid: null,
        version: null,
        startedAt,
        heartbeatAt: null,
        builds: [],
      });
    } finally {
      await redis.del(key);
      await redis.zrem(`${prefix}:builders`, 'older-builder');
    }
  });

  it('lists a running builder with the build it runs, and drops it once it stops', async () => {
    requireTool('git', 'git');
    expect(await listed()).toEqual([]);
    worker = new BuilderWorker({
      name: 'builder-one',
      control: new HttpBuildControl({ gateway: slipway.url, secret: builderSecret }),
      redis: slipway.services.redis,
      executor: new BuildahExecutor({}),
      executorName: 'buildah',
      concurrency: 2,
      logger: pino({ level: 'silent' }),
      workDir,
    });
    const startedAround = Date.now();
    await worker.start();
    const [idle] = await listed();
    expect(idle).toEqual({
      name: 'builder-one',
      state: 'live',
      executor: 'buildah',
      concurrency: 2,
      host: hostname(),
      pid: process.pid,
      version,
      startedAt: expect.any(String),
      heartbeatAt: expect.any(String),
      builds: [],
    });
    expect(Date.parse(idle!.startedAt!)).toBeGreaterThanOrEqual(startedAround - 1000);

    const build = await stalledBuild();
    await waitFor('the builder to fetch from the remote', () =>
      remote.requests.length > 0 ? true : undefined,
    );
    const [busy] = await listed();
    expect(busy).toMatchObject({ name: 'builder-one', state: 'live' });
    expect(busy!.builds).toEqual([
      {
        id: build.id,
        repository: 'acme/app',
        phase: 'cloning',
        phaseSince: expect.any(String),
        startedAt: expect.any(String),
        claimExpiresAt: expect.any(String),
        logUrl: `${slipway.url}/api/v1/builds/${build.id}/logs`,
      },
    ]);
    expect(Date.parse(busy!.builds[0]!.claimExpiresAt!)).toBeGreaterThan(Date.now());
    const scraped = await metrics();
    expect(scraped).toMatch(/^slipway_builders_live 1$/m);
    expect(scraped).toMatch(/^slipway_builds_running\{builder="builder-one"\} 1$/m);

    await worker.stop();
    worker = undefined;
    expect(await listed()).toEqual([]);
    expect((await slipway.services.builds.get(build.id))?.phase).toBe('internal_error');
    const after = await metrics();
    expect(after).toMatch(/^slipway_builders_live 0$/m);
    expect(after).not.toContain('builder="builder-one"');
  });

  it('shows a builder gone silent that still holds a build, until its claim runs out', async () => {
    const build = await stalledBuild();
    // Claimed as a builder would, by one that then vanished: it never announces itself.
    await slipway.services.buildService.claim(build.id, 'vanished-builder');
    expect(await listed()).toEqual([
      {
        name: 'vanished-builder',
        state: 'gone',
        executor: null,
        concurrency: null,
        host: null,
        pid: null,
        version: null,
        startedAt: null,
        heartbeatAt: null,
        builds: [
          expect.objectContaining({ id: build.id, phase: 'cloning', claimExpiresAt: expect.any(String) }),
        ],
      },
    ]);
    expect(await metrics()).toMatch(/^slipway_builds_running\{builder="vanished-builder"\} 1$/m);
  });

  it('is described in the OpenAPI document', async () => {
    const document = (await (await fetch(`${slipway.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(document.paths['/api/v1/builders']?.get).toBeDefined();
    expect(document.components.schemas).toHaveProperty('Builder');
    expect(document.components.schemas).toHaveProperty('BuilderBuild');
  });
});
