import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import { revisionLabel } from '../../src/builder/executors/index.ts';
import { adminUser } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool } from '../helpers/tools.ts';
import { inspectAsAdmin } from '../builder/fixtures.ts';
import { GitRepository } from '../builder/git-fixtures.ts';
import { LocalBuilderSlipway } from './build-fixtures.ts';

/**
 * One `slipway serve` that builds by itself (builds.localBuilder), as a single-node install does: a
 * build asked for through the service is claimed, built with buildah and pushed back to the same
 * gateway with the build's own token, without any `slipway builder` process.
 */
describe('the builder inside slipway serve', () => {
  let workspace: ContainersWorkspace;
  let builds: LocalBuilderSlipway;
  let slipway: TestSlipway;
  let repository: GitRepository;

  beforeAll(async () => {
    requireTool('git', 'git');
    workspace = await ContainersWorkspace.create('slipway-local-builder-');
    builds = await LocalBuilderSlipway.start(workspace, ['acme/local']);
    ({ slipway } = builds);
    repository = await GitRepository.create(workspace.path('tmp'), 'local');
  });

  afterAll(async () => {
    await builds?.stop();
    await workspace?.remove();
  });

  it('builds a commit and pushes it back under its tag, labelled with the commit', async () => {
    const commit = await repository.commit({
      Dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\n',
      'hello.txt': 'built inside serve\n',
    });
    const requested = await slipway.services.buildService.manual(
      { repository: 'acme/local', cloneUrl: repository.bare, commit, tags: ['local-1'] },
      adminUser,
    );
    const build = await builds.archived(requested.id);
    expect(build).toMatchObject<Partial<Build>>({ phase: 'complete', commit, error: null });
    expect(build.builder).toMatch(/-local-\d+$/);
    const image = await inspectAsAdmin(workspace, `${slipway.host}/acme/local:local-1`);
    expect(image.Digest).toBe(build.digest);
    expect(image.Labels[revisionLabel]).toBe(commit);
  });
});
