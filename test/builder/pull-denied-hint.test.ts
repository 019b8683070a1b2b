import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BuildFailedError,
  DockerApiExecutor,
  type BuildRequest,
  type Executor,
} from '../../src/builder/executors/index.ts';
import { pullDeniedHint } from '../../src/builder/pull-denied-hint.ts';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import type { Login } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { setUpExecutorTests, workspaceBuildah, type ExecutorTestSetup } from './executor-fixtures.ts';
import { startPodmanService, type PodmanService } from './fixtures.ts';

const revision = '9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b';

/**
 * The hint a build that may not pull its private FROM image ends with, from what buildah and the Docker
 * API executor (against Podman) really print when the registry refuses the pull, and only then.
 */
describe('the hint for a FROM pull this Slipway refused', () => {
  let workspace: ContainersWorkspace;
  let podman: PodmanService;
  let slipway: TestSlipway;
  let setup: ExecutorTestSetup;
  /** A robot that may write to acme/app only: acme/base (its FROM image) is private to it. */
  let outsider: Login;
  let executors: Record<string, Executor>;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-builder-pull-hint-');
    [podman, slipway] = await Promise.all([
      startPodmanService(workspace.path('podman'), workspace.env),
      startSecuredSlipway(),
    ]);
    const buildah = workspaceBuildah(workspace);
    setup = await setUpExecutorTests(workspace, slipway, buildah, revision);
    outsider = await setup.fixtures.robot('acme', 'outsider');
    await setup.fixtures.grant('acme/app', { user: outsider.username }, 'write');
    executors = {
      buildah,
      'the Docker API': new DockerApiExecutor({
        docker: { socketPath: podman.socketPath },
        isolation: 'chroot',
      }),
    };
  });
  afterAll(async () => {
    await podman?.stop();
    await slipway?.stop();
    await workspace?.remove();
  });

  /** Builds `Dockerfile` with `executor`; the BuildFailedError it ends with. */
  async function failedBuild(
    executor: Executor,
    dockerfile: string,
    overrides: Partial<BuildRequest> = {},
  ): Promise<BuildFailedError> {
    const context = await setup.newContext({ Dockerfile: dockerfile });
    const error = await executor
      .build(setup.request(context, overrides), { onLine: () => {} })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildFailedError);
    return error as BuildFailedError;
  }
  const ownBuild = { repository: 'acme/app', triggerId: 'trigger-7' };
  const asOutsider = () => ({ credentials: { username: outsider.username, token: outsider.password } });

  for (const name of ['buildah', 'the Docker API']) {
    it(`names the private image and the pull robot to give when ${name} may not pull it`, async () => {
      const error = await failedBuild(executors[name]!, `FROM ${setup.shellBase}\nRUN true\n`, asOutsider());
      expect(error.message).toMatch(/denied|unauthorized/);
      const denied =
        'the build may pull only its own repository, public ones and open pull-through caches: ' +
        'to use the private image acme/base, ';
      expect(pullDeniedHint(error, slipway.host, { repository: 'acme/app', triggerId: 'trigger-7' })).toBe(
        `${denied}give the trigger a pull robot that can read it (slipway trigger pull-robot trigger-7 NS+NAME)`,
      );
      expect(pullDeniedHint(error, slipway.host, { repository: 'acme/app', triggerId: null })).toBe(
        `${denied}start the build with a pull robot that can read it (slipway build start --pull-robot NS+NAME)`,
      );
    });

    it(`gives no hint when a step after the FROM fails saying denied, or a push is refused (${name})`, async () => {
      const step = await failedBuild(
        executors[name]!,
        `FROM ${setup.shellBase}\nRUN echo "${slipway.host}/acme/base: access denied" && exit 1\n`,
      );
      expect(step.message).toContain('access denied');
      expect(pullDeniedHint(step, slipway.host, ownBuild)).toBeNull();

      const push = await failedBuild(executors[name]!, 'FROM scratch\nCOPY Dockerfile /\n', {
        ...asOutsider(),
        destinations: [`${slipway.host}/acme/base:pushed`],
      });
      expect(push.message).toMatch(/denied|unauthorized/);
      expect(pullDeniedHint(push, slipway.host, ownBuild)).toBeNull();
    });
  }
});
