import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import { revisionLabel, sourceLabel } from '../../src/builder/executors/index.ts';
import type { BuildLogPageResource, BuildResource } from '../../src/cli/resources.ts';
import { ApiCaller } from '../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool, waitFor } from '../helpers/tools.ts';
import { inspectAsAdmin, spawnBuilder, startPodmanService, type PodmanService } from '../builder/fixtures.ts';
import { GitRepository } from '../builder/git-fixtures.ts';
import { publishBase, shellBaseLayout } from '../builder/shell-base.ts';
import type { SlipwayProcess } from '../helpers/worker-process.ts';

const builderSecret = 'e2e-docker-builder-secret-0123456789abcdef';

/*
 * `slipway builder --executor docker` against a `podman system service` on a unix socket: the engine
 * pulls the base (a public repository of the Slipway under test) and pushes the image with the build's
 * token, while the builder streams the engine's output into the build log.
 */
describe('builds with `slipway builder --executor docker` and podman system service', () => {
  let workspace: ContainersWorkspace;
  let podman: PodmanService;
  let slipway: TestSlipway;
  let gitDir: string;
  let sources: GitRepository;
  let builder: SlipwayProcess;

  beforeAll(async () => {
    requireTool('podman', 'podman');
    requireTool('git', 'git');
    workspace = await ContainersWorkspace.create('slipway-e2e-builds-docker-');
    let base: string;
    [podman, slipway, base] = await Promise.all([
      startPodmanService(workspace.path('podman'), workspace.env),
      startSecuredSlipway({ config: { builds: { builderSecret } } }),
      shellBaseLayout(workspace, 'podman'),
    ]);
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/engine');
    await publishBase(workspace, slipway, fixtures, base);

    gitDir = await mkdtemp(join(tmpdir(), 'slipway-e2e-builds-docker-git-'));
    sources = await GitRepository.create(gitDir, 'engine');
    builder = spawnBuilder(
      workspace,
      { gateway: slipway.url, name: 'e2e-docker-builder', secret: builderSecret },
      [
        '--executor',
        'docker',
        '--docker-host',
        `unix://${podman.socketPath}`,
        '--isolation',
        'chroot',
        '--work-dir',
        workspace.path('builder', 'checkouts'),
      ],
    );
  });
  afterAll(async () => {
    await builder?.terminate();
    await podman?.stop();
    await slipway?.stop();
    await workspace?.remove();
    if (gitDir) await rm(gitDir, { recursive: true, force: true });
  });

  it('builds the commit through the engine API and pushes it with the revision label', async () => {
    const commit = await sources.commit({
      Dockerfile: `FROM ${slipway.host}/acme/base:1\nCOPY motd /etc/motd\nRUN echo "engine-$((6*7))" && cat /etc/motd\n`,
      motd: 'built by the engine\n',
    });
    const api = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const started = await api.post<BuildResource>('/repositories/acme/engine/builds', {
      cloneUrl: `file://${sources.bare}`,
      commit,
      tags: ['1.0', 'latest'],
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const build = await waitFor(
      'the build to end',
      async () => {
        const current = await slipway.services.builds.get(started.body.id);
        return current?.logDigest ? current : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    ).catch((error: unknown): Build => {
      throw new Error(`${(error as Error).message}\nbuilder output:\n${builder.output()}`);
    });
    expect(build.phase, build.error ?? '').toBe('complete');
    expect(build.builder).toBe('e2e-docker-builder');
    expect(build.commit).toBe(commit);
    expect(build.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Object.keys(build.phaseMs).sort()).toEqual(['building', 'cloning', 'pushing']);

    for (const tag of ['1.0', 'latest']) {
      const image = await inspectAsAdmin(workspace, `${slipway.host}/acme/engine:${tag}`);
      expect(image.Digest).toBe(build.digest);
      expect(image.Labels[revisionLabel]).toBe(commit);
      expect(image.Labels[sourceLabel]).toBe(`file://${sources.bare}`);
    }

    const log = await api.get<BuildLogPageResource>(`/builds/${build.id}/logs`);
    const texts = log.body.entries.flatMap((entry) => (entry.type === 'line' ? [entry.text] : []));
    expect(texts).toContain('engine-42');
    expect(texts).toContain('built by the engine');
    expect(log.body.entries.at(-1)).toMatchObject({ type: 'end', phase: 'complete' });
  });
});
