import { mkdir } from 'node:fs/promises';
import { expect } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import type { BuildLogPageResource, BuildResource, IssuedTriggerResource } from '../../src/cli/resources.ts';
import { ApiCaller } from '../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../helpers/auth.ts';
import type { ContainersWorkspace } from '../helpers/containers.ts';
import { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { waitFor } from '../helpers/tools.ts';
import { GitRepository } from '../builder/git-fixtures.ts';

/**
 * The repository `private` in the workspace's `git` directory (`gitDir`, for git servers to serve), with
 * one commit to build: a Dockerfile `FROM scratch` that copies a recipe in.
 */
export async function privateRecipeRepository(
  workspace: ContainersWorkspace,
): Promise<{ gitDir: string; repository: GitRepository; commit: string }> {
  const gitDir = workspace.path('git');
  await mkdir(gitDir);
  const repository = await GitRepository.create(gitDir, 'private');
  const commit = await repository.commit({
    Dockerfile: 'FROM scratch\nCOPY recipe.txt /recipe.txt\n',
    'recipe.txt': 'the secret sauce\n',
  });
  return { gitDir, repository, commit };
}

/** The superuser's API caller and identity fixtures on `slipway`. */
export interface AdminAccess {
  api: ApiCaller;
  fixtures: IdentityFixtures;
}

/** The superuser's API caller and fixtures on `slipway`, with `repositories` and their organizations created. */
export async function withRepositories(
  slipway: TestSlipway,
  repositories: readonly string[],
): Promise<AdminAccess> {
  const api = ApiCaller.as(slipway, basic(adminUser, adminPassword));
  const fixtures = await IdentityFixtures.of(slipway);
  const organizations = new Set(repositories.map((repository) => repository.split('/')[0]!));
  for (const organization of organizations) await fixtures.organization(organization);
  for (const repository of repositories) await fixtures.repository(repository);
  return { api, fixtures };
}

/** Creates a custom-git trigger of `repository` through the API (`provider: 'custom'` and `trigger`). */
export async function createTrigger(
  api: ApiCaller,
  repository: string,
  trigger: Record<string, unknown>,
): Promise<IssuedTriggerResource> {
  const created = await api.post<IssuedTriggerResource>(`/repositories/${repository}/triggers`, {
    provider: 'custom',
    ...trigger,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

/** Asks for a build of `repository` through the API, as `slipway build start` does; its id. */
export async function requestBuild(
  api: ApiCaller,
  repository: string,
  build: Record<string, unknown>,
): Promise<string> {
  const started = await api.post<BuildResource>(`/repositories/${repository}/builds`, build);
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  return started.body.id;
}

/** What buildah, started by the gateway in this process, reads its containers configuration from. */
const containersVariables = [
  'CONTAINERS_STORAGE_CONF',
  'CONTAINERS_REGISTRIES_CONF',
  'CONTAINERS_CONF',
] as const;

/** Sets `variables` in this process's environment; puts back what was there. */
function setProcessEnv(variables: NodeJS.ProcessEnv): () => void {
  const saved: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(variables)) {
    saved[key] = process.env[key];
    process.env[key] = value;
  }
  return () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

/**
 * One `slipway serve` with authentication on that builds by itself (builds.localBuilder: buildah, chroot,
 * vfs), as a single-node install does, and the superuser's ways into it.
 */
export class LocalBuilderSlipway implements AdminAccess {
  readonly slipway: TestSlipway;
  readonly api: ApiCaller;
  readonly fixtures: IdentityFixtures;
  readonly #restoreEnv: () => void;

  private constructor(slipway: TestSlipway, access: AdminAccess, restoreEnv: () => void) {
    this.slipway = slipway;
    this.api = access.api;
    this.fixtures = access.fixtures;
    this.#restoreEnv = restoreEnv;
  }

  /**
   * Starts the gateway with `repositories` (and their organizations) created. buildah and git, started by
   * the gateway in this process, take the workspace's containers configuration and `env` from this
   * process's environment: set here, put back by stop().
   */
  static async start(
    workspace: ContainersWorkspace,
    repositories: readonly string[],
    env: NodeJS.ProcessEnv = {},
  ): Promise<LocalBuilderSlipway> {
    const containers = Object.fromEntries(containersVariables.map((key) => [key, workspace.env[key]]));
    const restoreEnv = setProcessEnv({ ...containers, ...env });
    let slipway: TestSlipway | undefined;
    try {
      slipway = await startSecuredSlipway({
        config: { builds: { localBuilder: true, isolation: 'chroot', storageDriver: 'vfs' } },
      });
      return new LocalBuilderSlipway(slipway, await withRepositories(slipway, repositories), restoreEnv);
    } catch (error) {
      await slipway?.stop();
      restoreEnv();
      throw error;
    }
  }

  async stop(): Promise<void> {
    try {
      await this.slipway.stop();
    } finally {
      this.#restoreEnv();
    }
  }

  /** Creates a custom-git trigger of `repository` through the API. */
  createTrigger(repository: string, trigger: Record<string, unknown>): Promise<IssuedTriggerResource> {
    return createTrigger(this.api, repository, trigger);
  }

  /** Asks for a build of `repository` through the API, as `slipway build start` does; its id. */
  requestBuild(repository: string, build: Record<string, unknown>): Promise<string> {
    return requestBuild(this.api, repository, build);
  }

  /** The build as the store has it, once it has ended and its log has been archived. */
  archived(buildId: string): Promise<Build> {
    return waitFor(
      `build ${buildId} to end and its log to be archived`,
      async () => {
        const current = await this.slipway.services.builds.get(buildId);
        return current?.logDigest ? current : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
  }

  /** The build as the API shows it, once it has ended. */
  ended(buildId: string): Promise<BuildResource> {
    return waitFor(
      `build ${buildId} to end`,
      async () => {
        const { body } = await this.api.get<BuildResource>(`/builds/${buildId}`);
        return body.finishedAt !== null ? body : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
  }

  /** The build's log read through the API: its lines, joined, and whether the build was over. */
  async log(buildId: string): Promise<{ text: string; ended: boolean }> {
    const page = await this.api.get<BuildLogPageResource>(`/builds/${buildId}/logs?limit=10000`);
    const lines = page.body.entries.flatMap((entry) => (entry.type === 'line' ? [entry.text!] : []));
    return { text: lines.join('\n'), ended: page.body.ended };
  }

  /**
   * Builds `repository` through the API and waits for the build to end and its log to be archived: the
   * ended build, its log's lines (joined) and whether the log said the build was over.
   */
  async buildWithLog(
    repository: string,
    build: Record<string, unknown>,
  ): Promise<{ build: Build; log: string; logEnded: boolean }> {
    const ended = await this.archived(await this.requestBuild(repository, build));
    const { text, ended: logEnded } = await this.log(ended.id);
    return { build: ended, log: text, logEnded };
  }
}
