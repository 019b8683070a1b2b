import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import { revisionLabel } from '../../src/builder/executors/index.ts';
import { postReceiveHookScript } from '../../src/triggers/custom-git.ts';
import { triggerSettingsSchema } from '../../src/triggers/trigger-settings.ts';
import { webhookPath } from '../../src/gateway/webhooks/deliveries.ts';
import { adminPassword, adminUser, startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool, waitFor } from '../helpers/tools.ts';
import { GitRepository } from '../builder/git-fixtures.ts';
import { spawnSlipway, type SlipwayProcess } from '../builder/process-fixtures.ts';

const builderSecret = 'e2e-builder-secret-0123456789abcdef01234';

/*
 * The case from end to end: `git push` to a bare repository with Slipway's post-receive hook →
 * the custom git webhook → a build → a `slipway builder` process (buildah, chroot, vfs) → an image in
 * Slipway under the trigger's templated tags, labelled with the commit.
 */
describe('a git push builds an image', () => {
  let workspace: ContainersWorkspace;
  let slipway: TestSlipway;
  let gitDir: string;
  let builder: SlipwayProcess;

  beforeAll(async () => {
    requireTool('curl', 'curl');
    requireTool('openssl', 'openssl');
    workspace = await ContainersWorkspace.create('slipway-e2e-builds-');
    slipway = await startSecuredSlipway({ config: { builds: { builderSecret } } });
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    gitDir = await mkdtemp(join(tmpdir(), 'slipway-e2e-builds-git-'));
    builder = spawnSlipway(
      [
        'builder',
        '--gateway',
        slipway.url,
        '--name',
        'e2e-builder',
        '--isolation',
        'chroot',
        '--storage-driver',
        'vfs',
        '--root',
        workspace.path('builder', 'root'),
        '--runroot',
        workspace.path('builder', 'run'),
        '--signature-policy',
        workspace.policy,
      ],
      { ...workspace.env, SLIPWAY_BUILDER_SECRET: builderSecret, REDIS_URL: inject('redisUrl') },
    );
  });
  afterAll(async () => {
    await builder?.terminate();
    await slipway?.stop();
    await workspace?.remove();
    if (gitDir) await rm(gitDir, { recursive: true, force: true });
  });

  it('builds the pushed commit and pushes it under the templated tags', async () => {
    const repository = await GitRepository.create(gitDir, 'inventory');
    const { trigger, webhookSecret } = await slipway.services.triggers.create(
      'acme/inventory',
      triggerSettingsSchema.parse({
        provider: 'custom',
        cloneUrl: `file://${repository.bare}`,
        tagTemplates: ['${branch}', 'git-${short_sha}'],
      }),
      null,
    );
    const hook = join(repository.bare, 'hooks', 'post-receive');
    await writeFile(
      hook,
      postReceiveHookScript({
        webhookUrl: `${slipway.url}${webhookPath('custom', trigger.id)}`,
        secretEnvOrValue: { value: webhookSecret },
        cloneUrl: `file://${repository.bare}`,
      }),
    );
    await chmod(hook, 0o755);

    const commit = await repository.commit({
      Dockerfile: 'FROM scratch\nCOPY inventory.txt /inventory.txt\n',
      'inventory.txt': 'three crates\n',
    });

    const build = await waitFor(
      'the pushed commit to be built',
      async () => {
        const [latest] = await slipway.services.builds.list('acme/inventory', { limit: 1 });
        if (latest && ['waiting', 'cloning', 'building', 'pushing'].includes(latest.phase)) return undefined;
        return latest;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nbuilder output:\n${builder.output()}`);
    });
    expect(build.phase, (build as Build).error ?? '').toBe('complete');
    expect(build.commit).toBe(commit);
    expect(build.builder).toBe('e2e-builder');
    expect([...build.tags].sort()).toEqual(['git-' + commit.slice(0, 7), 'latest', 'main'].sort());
    for (const tag of build.tags) {
      const image = JSON.parse(
        (
          await workspace.skopeo([
            'inspect',
            '--tls-verify=false',
            '--creds',
            `${adminUser}:${adminPassword}`,
            `docker://${slipway.host}/acme/inventory:${tag}`,
          ])
        ).stdout,
      ) as { Digest: string; Labels: Record<string, string> };
      expect(image.Digest).toBe(build.digest);
      expect(image.Labels[revisionLabel]).toBe(commit);
    }
  });
});
