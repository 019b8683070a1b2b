import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResource, IssuedTriggerResource, TriggerResource } from '../../src/cli/resources.ts';
import type { ApiCaller } from '../helpers/api.ts';
import { adminPassword, adminUser } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool } from '../helpers/tools.ts';
import { inspectAsAdmin } from '../builder/fixtures.ts';
import { GitRepository } from '../builder/git-fixtures.ts';
import { shellBaseLayout } from '../builder/shell-base.ts';
import { LocalBuilderSlipway } from './build-fixtures.ts';

/**
 * Builds FROM a private base image, in one `slipway serve` that builds by itself: the build's own token
 * may not pull acme/base, the trigger's pull robot may lend it its read access, and deleting the robot
 * takes that away.
 */
describe('builds with a pull robot', () => {
  let workspace: ContainersWorkspace;
  let builds: LocalBuilderSlipway;
  let slipway: TestSlipway;
  let api: ApiCaller;
  let sources: GitRepository;
  let commit: string;

  beforeAll(async () => {
    requireTool('git', 'git');
    workspace = await ContainersWorkspace.create('slipway-pull-robot-');
    builds = await LocalBuilderSlipway.start(workspace, ['acme/app']);
    const { fixtures } = builds;
    ({ slipway, api } = builds);
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
    await builds?.stop();
    await workspace?.remove();
  });

  async function triggerWith(pullRobot: string | null): Promise<IssuedTriggerResource> {
    const created = await builds.createTrigger('acme/app', { cloneUrl: `file://${sources.bare}`, pullRobot });
    expect(created.pullRobot).toBe(pullRobot);
    return created;
  }

  /** Builds the commit with the trigger's settings, as `slipway build start --trigger` does; the ended build. */
  async function buildWith(trigger: TriggerResource, tag: string): Promise<BuildResource> {
    return builds.ended(
      await builds.requestBuild('acme/app', { triggerId: trigger.id, commit, tags: [tag] }),
    );
  }

  it('cannot pull a private base image without a pull robot: the build ends error, saying what to do', async () => {
    const trigger = await triggerWith(null);
    const build = await buildWith(trigger, 'no-robot');
    expect(build.phase).toBe('error');
    expect(build.pullRobot).toBeNull();
    expect(build.error).toMatch(/requested access to the resource is denied/);
    const hint =
      'the build may pull only its own repository, public ones and open pull-through caches: ' +
      'to use the private image acme/base, give the trigger a pull robot that can read it ' +
      `(slipway trigger pull-robot ${trigger.id} NS+NAME)`;
    expect(build.error?.split('\n').at(-1)).toBe(hint);
    expect((await builds.log(build.id)).text).toContain(hint);
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
