import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import { adminUser, startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool, waitFor } from '../helpers/tools.ts';
import { inspectAsAdmin } from '../builder/fixtures.ts';
import { GitRepository } from '../builder/git-fixtures.ts';

const revisionLabel = 'org.opencontainers.image.revision';

/**
 * One `slipway serve` that builds by itself (builds.localBuilder), as a single-node install does: a
 * build asked for through the service is claimed, built with buildah and pushed back to the same
 * gateway with the build's own token, without any `slipway builder` process.
 */
describe('the builder inside slipway serve', () => {
  let workspace: ContainersWorkspace;
  let slipway: TestSlipway;
  let repository: GitRepository;
  const saved: NodeJS.ProcessEnv = {};

  beforeAll(async () => {
    requireTool('git', 'git');
    workspace = await ContainersWorkspace.create('slipway-local-builder-');
    // buildah, started by the gateway in this process, keeps its storage in the workspace.
    for (const key of ['CONTAINERS_STORAGE_CONF', 'CONTAINERS_REGISTRIES_CONF', 'CONTAINERS_CONF'] as const) {
      saved[key] = process.env[key];
      process.env[key] = workspace.env[key];
    }
    slipway = await startSecuredSlipway({
      config: { builds: { localBuilder: true, isolation: 'chroot', storageDriver: 'vfs' } },
    });
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/local');
    repository = await GitRepository.create(workspace.path('tmp'), 'local');
  });

  afterAll(async () => {
    await slipway?.stop();
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
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
    const build = await waitFor(
      'the local build to end and its log to be archived',
      async () => {
        const current = await slipway.services.builds.get(requested.id);
        return current && current.logDigest !== null ? current : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    expect(build).toMatchObject<Partial<Build>>({ phase: 'complete', commit, error: null });
    expect(build.builder).toMatch(/-local-\d+$/);
    const image = await inspectAsAdmin(workspace, `${slipway.host}/acme/local:local-1`);
    expect(image.Digest).toBe(build.digest);
    expect(image.Labels[revisionLabel]).toBe(commit);
  });
});
