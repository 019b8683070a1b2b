import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBuildControl } from '../../src/builder/builder-http-control.ts';
import type { Build } from '../../src/builder/build-store.ts';
import type { IssuedTriggerResource, TriggerResource } from '../../src/cli/resources.ts';
import type { ApiCaller } from '../helpers/api.ts';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { sshKeyPair, startGitSshServer, type GitSshServer } from '../helpers/git-servers.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { requireTool } from '../helpers/tools.ts';
import { inspectAsAdmin } from '../builder/fixtures.ts';
import type { GitRepository } from '../builder/git-fixtures.ts';
import {
  createTrigger,
  LocalBuilderSlipway,
  privateRecipeRepository,
  requestBuild,
  withRepositories,
} from './build-fixtures.ts';

const target = 'acme/checked';

/*
 * Builds by the builder inside `slipway serve` of a repository on a throwaway sshd, through a trigger
 * with a deploy key: the trigger's known hosts, set and changed through the API, decide which host key
 * the builder's ssh accepts.
 */
describe('builds over SSH check the host key against the trigger’s known hosts', () => {
  let workspace: ContainersWorkspace;
  let builds: LocalBuilderSlipway;
  let slipway: TestSlipway;
  let api: ApiCaller;
  let repository: GitRepository;
  let commit: string;
  let sshd: GitSshServer;
  let deployKey: { privateKey: string; publicKey: string };
  let impostorKey: string;
  let hostName: string;
  let port: string;
  let triggerId: string;

  beforeAll(async () => {
    requireTool('git', 'git');
    requireTool('ssh', 'openssh-client');
    workspace = await ContainersWorkspace.create('slipway-known-hosts-');
    ({ repository, commit } = await privateRecipeRepository(workspace));
    const keys = workspace.path('keys');
    await mkdir(keys);
    let impostor: { publicKey: string };
    [deployKey, impostor] = await Promise.all([sshKeyPair(keys, 'deploy'), sshKeyPair(keys, 'impostor')]);
    impostorKey = impostor.publicKey.split(' ').slice(0, 2).join(' ');
    sshd = await startGitSshServer(workspace.path('sshd'), [deployKey.publicKey]);
    port = new URL(sshd.url(repository.bare)).port;
    hostName = `[127.0.0.1]:${port}`;

    builds = await LocalBuilderSlipway.start(workspace, [target]);
    ({ slipway, api } = builds);
  });

  afterAll(async () => {
    await builds?.stop();
    await sshd?.stop();
    await workspace?.remove();
  });

  const createTrigger = (knownHosts: string) =>
    api.post<IssuedTriggerResource>(`/repositories/${target}/triggers`, {
      provider: 'custom',
      cloneUrl: sshd.url(repository.bare),
      credentials: { deployKey: deployKey.privateKey },
      knownHosts,
    });

  const setKnownHosts = async (knownHosts: string | null) => {
    const changed = await api.patch<TriggerResource>(`/triggers/${triggerId}`, { knownHosts });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body.knownHosts).toBe(knownHosts);
  };

  /** Builds the commit with the trigger into `tag`; the ended build and its log's lines. */
  const buildWith = (tag: string) => builds.buildWithLog(target, { triggerId, commit, tags: [tag] });

  const acceptedConnections = () => sshd.log().match(/Accepted publickey/g)?.length ?? 0;

  it('refuses known hosts with a malformed line, naming it (create and change)', async () => {
    const malformed = `${hostName} ${sshd.hostPublicKey}\n127.0.0.1 ssh-ed25519 not-base64!\n`;
    const created = await createTrigger(malformed);
    expect(created.status).toBe(400);
    expect(JSON.stringify(created.body)).toContain(
      'known hosts line 2 (\\"127.0.0.1 ssh-ed25519 not-base64!\\")',
    );

    const valid = await createTrigger(`${hostName} ${sshd.hostPublicKey}\n`);
    expect(valid.status, JSON.stringify(valid.body)).toBe(201);
    triggerId = valid.body.id;
    // A key whose blob names another type than its line does is no key of that type.
    const mislabelled = `github.com ssh-rsa ${sshd.hostPublicKey.split(' ')[1]}`;
    const changed = await api.patch(`/triggers/${triggerId}`, { knownHosts: mislabelled });
    expect(changed.status).toBe(400);
    expect(JSON.stringify(changed.body)).toContain('known hosts line 1 (\\"github.com ssh-rsa');
    // Public data: shown as it was given, without the trailing newline.
    const shown = await api.get<TriggerResource>(`/triggers/${triggerId}`);
    expect(shown.body.knownHosts).toBe(`${hostName} ${sshd.hostPublicKey}`);
  });

  it('builds and pushes when the server presents the known host key, with no warning', async () => {
    const { build, log } = await buildWith('checked');

    expect(build).toMatchObject<Partial<Build>>({ phase: 'complete', commit, error: null });
    const image = await inspectAsAdmin(workspace, `${slipway.host}/${target}:checked`);
    expect(image.Digest).toBe(build.digest);
    expect(log).toContain(`Checked out ${commit}`);
    expect(log).not.toMatch(/was not checked|Permanently added/);
  });

  it('ends the build `error` when the server presents another key, cloning nothing', async () => {
    await setKnownHosts(`${hostName} ${impostorKey}`);
    const accepted = acceptedConnections();
    const { build, log } = await buildWith('impostor');

    expect(build.phase).toBe('error');
    expect(build.error).toContain(`the host key of ${hostName} does not match the trigger's known hosts`);
    expect(log).not.toContain('Checked out');
    expect(acceptedConnections()).toBe(accepted);
    expect(build.digest).toBeNull();
    const tags = await api.get(`/repositories/${target}/tags`);
    expect(tags.status).toBe(200);
    expect(JSON.stringify(tags.body)).not.toContain('impostor');
  });

  it('without known hosts builds, warning once in the log that the host key was not checked', async () => {
    await setKnownHosts(null);
    const { build, log } = await buildWith('unchecked');

    expect(build).toMatchObject<Partial<Build>>({ phase: 'complete', commit, error: null });
    const warnings = log.split('\n').filter((line) => line.includes('was not checked'));
    expect(warnings).toEqual([
      `warning: the host key of ${hostName} was not checked: set knownHosts on the trigger, e.g. from \`ssh-keyscan -p ${port} 127.0.0.1\``,
    ]);
    expect(log).not.toContain('Permanently added');
  });
});

describe('a builder claiming a build over the builder protocol', () => {
  const builderSecret = 'known-hosts-builder-secret-0123456789abcdef';
  let slipway: TestSlipway;
  let api: ApiCaller;

  beforeAll(async () => {
    // No builder of its own: builds wait for the one this test plays.
    slipway = await startSecuredSlipway({ config: { builds: { builderSecret, localBuilder: false } } });
    ({ api } = await withRepositories(slipway, [target]));
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  const claim = async (build: Record<string, unknown>) => {
    const id = await requestBuild(api, target, { commit: 'a'.repeat(40), tags: ['wire'], ...build });
    const control = new HttpBuildControl({ gateway: slipway.url, secret: builderSecret });
    return (await control.claim(id, 'wire-builder'))!;
  };

  it("gets the trigger's known hosts with the clone credentials; a build without a trigger none", async () => {
    const knownHosts =
      '[git.example.test]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM0HnXUxjO+BKXiaNHByoTTWhNcNRWwTEl5Ok29gpKUJ';
    const trigger = await createTrigger(api, target, {
      cloneUrl: 'ssh://git@git.example.test:2222/acme/app.git',
      knownHosts,
    });

    const withTrigger = await claim({ triggerId: trigger.id });
    expect(withTrigger.clone).toEqual({ knownHosts });
    const withoutTrigger = await claim({ cloneUrl: 'ssh://git@git.example.test:2222/acme/app.git' });
    expect(withoutTrigger.clone).toEqual({});
  });
});
