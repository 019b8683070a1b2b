import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResource, IssuedTriggerResource, TriggerResource } from '../../src/cli/resources.ts';
import { ApiCaller } from '../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool, waitFor } from '../helpers/tools.ts';
import { inspectAsAdmin } from '../builder/fixtures.ts';
import { GitRepository } from '../builder/git-fixtures.ts';
import { shellBaseLayout } from '../builder/shell-base.ts';

/**
 * Builds FROM a private base image, in one `slipway serve` that builds by itself: the build's own token
 * may not pull acme/base, the trigger's pull robot may lend it its read access, and deleting the robot
 * takes that away.
 */
describe('builds with a pull robot', () => {
  let workspace: ContainersWorkspace;
  let slipway: TestSlipway;
  let api: ApiCaller;
  let sources: GitRepository;
  let commit: string;
  const saved: NodeJS.ProcessEnv = {};

  beforeAll(async () => {
    requireTool('git', 'git');
    workspace = await ContainersWorkspace.create('slipway-pull-robot-');
    // buildah, started by the gateway in this process, keeps its storage in the workspace.
    for (const key of ['CONTAINERS_STORAGE_CONF', 'CONTAINERS_REGISTRIES_CONF', 'CONTAINERS_CONF'] as const) {
      saved[key] = process.env[key];
      process.env[key] = workspace.env[key];
    }
    slipway = await startSecuredSlipway({
      config: { builds: { localBuilder: true, isolation: 'chroot', storageDriver: 'vfs' } },
    });
    api = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
    // Pushed by the superuser, the repository is created private.
    await workspace.skopeo([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${adminUser}:${adminPassword}`,
      await shellBaseLayout(workspace, 'private'),
      `docker://${slipway.host}/acme/base:1`,
    ]);
    for (const robot of ['reader', 'doomed', 'idle']) await fixtures.robot('acme', robot);
    await fixtures.grant('acme/base', { user: 'acme+reader' }, 'read');
    await fixtures.grant('acme/base', { user: 'acme+doomed' }, 'read');

    sources = await GitRepository.create(workspace.path('tmp'), 'app');
    commit = await sources.commit({
      Dockerfile: `FROM ${slipway.host}/acme/base:1\nCOPY hello.txt /hello.txt\n`,
      'hello.txt': 'built on a private base\n',
    });
  });

  afterAll(async () => {
    await slipway?.stop();
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await workspace?.remove();
  });

  async function triggerWith(pullRobot: string | null): Promise<IssuedTriggerResource> {
    const created = await api.post<IssuedTriggerResource>('/repositories/acme/app/triggers', {
      provider: 'custom',
      cloneUrl: `file://${sources.bare}`,
      pullRobot,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.pullRobot).toBe(pullRobot);
    return created.body;
  }

  /** Builds the commit with the trigger's settings, as `slipway build start --trigger` does; the ended build. */
  async function buildWith(trigger: TriggerResource, tag: string): Promise<BuildResource> {
    const started = await api.post<BuildResource>('/repositories/acme/app/builds', {
      triggerId: trigger.id,
      commit,
      tags: [tag],
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    return waitFor(
      `build ${started.body.id} to end`,
      async () => {
        const { body } = await api.get<BuildResource>(`/builds/${started.body.id}`);
        return body.finishedAt !== null ? body : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
  }

  it('cannot pull a private base image without a pull robot: the build ends error, saying so', async () => {
    const build = await buildWith(await triggerWith(null), 'no-robot');
    expect(build.phase).toBe('error');
    expect(build.pullRobot).toBeNull();
    expect(build.error).toMatch(/requested access to the resource is denied/);
    expect(build.error).toContain('acme/base');
  });

  it('builds FROM it with a pull robot that may read it, recording the robot', async () => {
    const build = await buildWith(await triggerWith('acme+reader'), 'with-robot');
    expect(build.phase, build.error ?? '').toBe('complete');
    expect(build.pullRobot).toBe('acme+reader');
    const image = await inspectAsAdmin(workspace, `${slipway.host}/acme/app:with-robot`);
    expect(image.Digest).toBe(build.digest);
  });

  it('cannot pull it with a pull robot that has no read on it', async () => {
    const build = await buildWith(await triggerWith('acme+idle'), 'idle-robot');
    expect(build.phase).toBe('error');
    expect(build.pullRobot).toBe('acme+idle');
    expect(build.error).toMatch(/requested access to the resource is denied/);
  });

  it('loses the access when the robot is deleted: the trigger has no pull robot any more', async () => {
    const trigger = await triggerWith('acme+doomed');
    expect((await api.delete('/namespaces/acme/robots/doomed')).status).toBe(204);
    const { body: after } = await api.get<TriggerResource>(`/triggers/${trigger.id}`);
    expect(after.pullRobot).toBeNull();
    const build = await buildWith(after, 'deleted-robot');
    expect(build.phase).toBe('error');
    expect(build.error).toMatch(/requested access to the resource is denied/);
  });
});
