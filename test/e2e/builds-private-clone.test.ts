import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/builder/build-store.ts';
import { revisionLabel } from '../../src/builder/executors/index.ts';
import { commandLines } from '../helpers/command-lines.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import {
  sshKeyPair,
  startGitHttpServer,
  startGitSshServer,
  type GitHttpServer,
  type GitSshServer,
} from '../helpers/git-servers.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool } from '../helpers/tools.ts';
import { inspectAsAdmin } from '../builder/fixtures.ts';
import type { GitRepository } from '../builder/git-fixtures.ts';
import { LocalBuilderSlipway, privateRecipeRepository } from './build-fixtures.ts';

const gitUser = 'ci-reader';
const gitToken = 'glpat-private-clone-0123456789';
const wrongToken = 'glpat-wrong-clone-9876543210';
const basicFormOf = (token: string) => Buffer.from(`${gitUser}:${token}`).toString('base64');

/** The lines of an OpenSSH private key long enough to tell it apart from anything else in a log. */
const keyLines = (privateKey: string) => privateKey.split('\n').filter((line) => line.length >= 16);

/*
 * Builds by the builder inside `slipway serve` of a private repository on git servers of their own:
 * `git http-backend` over HTTPS (a self-signed certificate, which the builder trusts through git's own
 * GIT_SSL_CAINFO) that takes only Basic credentials with the trigger's token, and an sshd that takes only
 * the trigger's deploy key. The credentials go to the trigger through the API, sealed; the builds start
 * through the API; the logs are read through the API.
 */
describe('builds of private repositories with the trigger’s clone credentials', () => {
  let workspace: ContainersWorkspace;
  let builds: LocalBuilderSlipway;
  let slipway: TestSlipway;
  let repository: GitRepository;
  let commit: string;
  let https: GitHttpServer;
  let sshd: GitSshServer;
  let deployKey: { privateKey: string; publicKey: string };
  let strayKey: { privateKey: string; publicKey: string };
  /** Every process's command line, read while the HTTPS server held a request of the clone. */
  const duringClone: string[][] = [];

  beforeAll(async () => {
    requireTool('git', 'git');
    requireTool('openssl', 'openssl');
    requireTool('ssh', 'openssh-client');
    workspace = await ContainersWorkspace.create('slipway-private-clone-');
    const recipe = await privateRecipeRepository(workspace);
    ({ repository, commit } = recipe);
    https = await startGitHttpServer({
      root: recipe.gitDir,
      user: gitUser,
      token: gitToken,
      onRequest: () => void duringClone.push(...commandLines()),
    });
    const keys = workspace.path('keys');
    await mkdir(keys);
    [deployKey, strayKey] = await Promise.all([sshKeyPair(keys, 'deploy'), sshKeyPair(keys, 'stray')]);
    sshd = await startGitSshServer(workspace.path('sshd'), [deployKey.publicKey]);

    // git, started by the gateway in this process, takes GIT_SSL_CAINFO from its environment.
    builds = await LocalBuilderSlipway.start(workspace, ['acme/over-https', 'acme/over-ssh'], {
      GIT_SSL_CAINFO: https.certificateFile,
    });
    ({ slipway } = builds);
  });

  afterAll(async () => {
    await builds?.stop();
    await https?.stop();
    await sshd?.stop();
    await workspace?.remove();
  });

  const createTrigger = async (target: string, cloneUrl: string, credentials: object): Promise<string> =>
    (await builds.createTrigger(target, { cloneUrl, credentials })).id;

  /** Builds the commit with the trigger into `tag`; the ended build and its log's lines. */
  async function buildWith(target: string, triggerId: string, tag: string) {
    const { build, log, logEnded } = await builds.buildWithLog(target, { triggerId, commit, tags: [tag] });
    expect(logEnded).toBe(true);
    return { build, log };
  }

  const expectPushed = async (target: string, tag: string, build: Build) => {
    const image = await inspectAsAdmin(workspace, `${slipway.host}/${target}:${tag}`);
    expect(image.Digest).toBe(build.digest);
    expect(image.Labels[revisionLabel]).toBe(commit);
  };

  it('clones over HTTPS with the token, builds and pushes, the token in no log and no command line', async () => {
    const cloneUrl = https.url(repository.bare);
    const trigger = await createTrigger('acme/over-https', cloneUrl, { token: gitToken, username: gitUser });
    duringClone.length = 0;
    const { build, log } = await buildWith('acme/over-https', trigger, 'https');

    expect(build).toMatchObject<Partial<Build>>({ phase: 'complete', commit, error: null });
    await expectPushed('acme/over-https', 'https', build);
    expect(log).toContain(`Checked out ${commit}`);
    // The server let the clone in with the trigger's user and token, through real Basic authentication.
    expect(https.requests).toContainEqual({
      method: 'POST',
      path: '/private.git/git-upload-pack',
      user: gitUser,
      status: 200,
    });
    for (const secret of [gitToken, basicFormOf(gitToken)]) {
      expect(log).not.toContain(secret);
      // Read while git waited for the server's answer: git itself is among them, the token is not.
      expect(duringClone.some((args) => args.includes(cloneUrl))).toBe(true);
      expect(duringClone.filter((args) => args.join(' ').includes(secret))).toEqual([]);
    }
  });

  it('ends a build whose token the server refuses `error`, saying so without the token', async () => {
    const trigger = await createTrigger('acme/over-https', https.url(repository.bare), {
      token: wrongToken,
      username: gitUser,
    });
    const refusedBefore = https.requests.filter((request) => request.status === 401).length;
    const { build, log } = await buildWith('acme/over-https', trigger, 'refused');

    expect(build.phase).toBe('error');
    expect(build.error).toContain(`${https.url(repository.bare)} refused the trigger's token`);
    expect(https.requests.filter((request) => request.status === 401).length).toBeGreaterThan(refusedBefore);
    for (const secret of [wrongToken, basicFormOf(wrongToken)]) {
      expect(build.error).not.toContain(secret);
      expect(log).not.toContain(secret);
    }
  });

  it('clones over SSH with the deploy key, builds and pushes, the key in no log', async () => {
    const trigger = await createTrigger('acme/over-ssh', sshd.url(repository.bare), {
      deployKey: deployKey.privateKey,
    });
    const { build, log } = await buildWith('acme/over-ssh', trigger, 'ssh');

    expect(build).toMatchObject<Partial<Build>>({ phase: 'complete', commit, error: null });
    await expectPushed('acme/over-ssh', 'ssh', build);
    expect(log).toContain(`Checked out ${commit}`);
    expect(sshd.log()).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1/);
    for (const line of keyLines(deployKey.privateKey)) expect(log).not.toContain(line);
  });

  it('ends a build whose deploy key the server refuses `error`, saying so without the key', async () => {
    const trigger = await createTrigger('acme/over-ssh', sshd.url(repository.bare), {
      deployKey: strayKey.privateKey,
    });
    const { build, log } = await buildWith('acme/over-ssh', trigger, 'refused');

    expect(build.phase).toBe('error');
    expect(build.error).toContain(`${sshd.url(repository.bare)} refused the trigger's deploy key`);
    for (const line of keyLines(strayKey.privateKey)) {
      expect(build.error).not.toContain(line);
      expect(log).not.toContain(line);
    }
  });
});
