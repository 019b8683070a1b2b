import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  generateSshDeployKey,
  GitLabSetupError,
  registerGitLabProject,
  sshPublicKeyOf,
  syncGitLabProject,
  unregisterGitLabProject,
} from '../../src/triggers/gitlab-setup.ts';
import { FakeGitLab, fakeGitLabToken } from '../helpers/fake-gitlab.ts';
import { requireTool, run } from '../helpers/tools.ts';

/* GitLab cannot run in the tests: FakeGitLab stands in for its REST API and records what it is sent. */

const apiToken = fakeGitLabToken;
const webhookSecret = 'b7e1c9d04f2a63e8a51d7c0f9e2b4a68d3c1f07e5a9b2d64c8e0f1a3b5d7c9e2';
const projectPath = 'platform/payments/payments-api';
const webhookUrl = 'https://slipway.example.com/webhooks/gitlab/trg_4kq9z2';

const gitlab = new FakeGitLab();
const deployKey = generateSshDeployKey('slipway trg_4kq9z2');

beforeAll(() => gitlab.start());
afterAll(() => gitlab.stop());
beforeEach(() => {
  gitlab.reset();
  gitlab.addProject({ id: 15, path_with_namespace: projectPath, default_branch: 'main', role: 'maintainer' });
});

function options(overrides: Partial<Parameters<typeof registerGitLabProject>[0]> = {}) {
  return {
    apiUrl: gitlab.url,
    token: apiToken,
    project: projectPath,
    webhookUrl,
    webhookSecret,
    deployKey: { title: 'Slipway build trigger trg_4kq9z2', publicKey: deployKey.publicKey },
    ...overrides,
  };
}

/** Method and path of each request GitLab received. */
function calls(): string[] {
  return gitlab.requests.map((r) => `${r.method} ${r.path}`);
}

async function rejection(promise: Promise<unknown>): Promise<GitLabSetupError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GitLabSetupError);
    return error as GitLabSetupError;
  }
  throw new Error('expected a GitLabSetupError');
}

function expectNoSecrets(error: Error): void {
  for (const shown of [error.message, String(error), JSON.stringify(error), inspect(error, { depth: 10 })]) {
    expect(shown).not.toContain(apiToken);
    expect(shown).not.toContain(webhookSecret);
  }
  expect(error.cause).toBeUndefined();
}

describe('registering a GitLab project', () => {
  it('adds a push and tag push webhook with the secret token, and a read-only deploy key', async () => {
    const registration = await registerGitLabProject(options());

    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      'GET /api/v4/projects/15/hooks?per_page=100',
      'POST /api/v4/projects/15/hooks',
      'GET /api/v4/projects/15/deploy_keys?per_page=100',
      'POST /api/v4/projects/15/deploy_keys',
    ]);
    for (const request of gitlab.requests) expect(request.privateToken).toBe(apiToken);
    const [, , addHook, , addKey] = gitlab.requests;
    expect(addHook?.contentType).toBe('application/json');
    expect(addHook?.body).toEqual({
      url: webhookUrl,
      push_events: true,
      tag_push_events: true,
      token: webhookSecret,
      enable_ssl_verification: true,
    });
    expect(addKey?.body).toEqual({
      title: 'Slipway build trigger trg_4kq9z2',
      key: deployKey.publicKey,
      can_push: false,
    });

    const [hook] = gitlab.hooksOf(15);
    expect(registration).toEqual({
      projectId: 15,
      projectPath,
      hookId: hook?.id,
      hookCreated: true,
      deployKeyId: gitlab.deployKeysOf(15)[0]?.id,
      deployKeyCreated: true,
      cloneUrls: {
        http: `https://gitlab.example.com/${projectPath}.git`,
        ssh: `git@gitlab.example.com:${projectPath}.git`,
      },
      defaultBranch: 'main',
    });
    expect(hook).toMatchObject({ push_events: true, tag_push_events: true, enable_ssl_verification: true });
    expect(gitlab.hookTokens.get(hook?.id as number)).toBe(webhookSecret);
    expect(gitlab.deployKeysOf(15)[0]).toMatchObject({
      can_push: false,
      fingerprint_sha256: deployKey.fingerprint,
    });
  });

  it('registers again without duplicates: the hook is updated in place and the deploy key reused', async () => {
    const first = await registerGitLabProject(options());
    gitlab.requests.length = 0;

    const second = await registerGitLabProject(
      options({ tlsVerify: false, webhookSecret: 'replaced-secret-0c41f9a2' }),
    );

    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      'GET /api/v4/projects/15/hooks?per_page=100',
      `PUT /api/v4/projects/15/hooks/${first.hookId}`,
      'GET /api/v4/projects/15/deploy_keys?per_page=100',
    ]);
    expect(gitlab.requests[2]?.body).toEqual({
      url: webhookUrl,
      push_events: true,
      tag_push_events: true,
      token: 'replaced-secret-0c41f9a2',
      enable_ssl_verification: false,
    });
    expect(second).toEqual({ ...first, hookCreated: false, deployKeyCreated: false });
    expect(gitlab.hooksOf(15)).toHaveLength(1);
    expect(gitlab.hookTokens.get(first.hookId)).toBe('replaced-secret-0c41f9a2');
    expect(gitlab.deployKeysOf(15)).toHaveLength(1);
  });

  it('finds an existing hook with the URL past the first page, and turns its events on', async () => {
    for (let i = 0; i < 100; i += 1) gitlab.addHook(15, `https://chat.example.com/hooks/${i}`);
    const existing = gitlab.addHook(15, webhookUrl, { push_events: false, tag_push_events: false });

    const registration = await registerGitLabProject(options({ deployKey: undefined }));

    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      'GET /api/v4/projects/15/hooks?per_page=100',
      'GET /api/v4/projects/15/hooks?per_page=100&page=2',
      `PUT /api/v4/projects/15/hooks/${existing.id}`,
    ]);
    expect(registration).toMatchObject({ hookId: existing.id, hookCreated: false });
    expect(registration.deployKeyId).toBeUndefined();
    expect(existing).toMatchObject({ push_events: true, tag_push_events: true });
    expect(gitlab.hooksOf(15)).toHaveLength(101);
  });

  it('reuses a deploy key the project has with the same key, whatever its title and comment', async () => {
    const [type, blob] = deployKey.publicKey.split(' ');
    const existing = gitlab.addDeployKey(15, 'added by hand', `${type} ${blob} ops@laptop`);

    const registration = await registerGitLabProject(options());

    expect(calls()).not.toContain('POST /api/v4/projects/15/deploy_keys');
    expect(registration).toMatchObject({ deployKeyId: existing.id, deployKeyCreated: false });
  });

  it('takes a numeric project ID, and an API URL with /api/v4 and a trailing slash', async () => {
    const registration = await registerGitLabProject(
      options({ project: 15, apiUrl: `${gitlab.url}/api/v4/`, deployKey: undefined }),
    );
    expect(calls()[0]).toBe('GET /api/v4/projects/15');
    expect(registration.projectPath).toBe(projectPath);
  });

  it('gives a project without commits no default branch', async () => {
    gitlab.addProject({
      id: 16,
      path_with_namespace: 'platform/new-service',
      default_branch: null,
      role: 'maintainer',
    });
    const registration = await registerGitLabProject(options({ project: 'platform/new-service' }));
    expect(registration.defaultBranch).toBeNull();
  });
});

describe('GitLab refusing', () => {
  it('says a 401 means the token is wrong, expired or revoked, never showing it', async () => {
    const error = await rejection(registerGitLabProject(options({ token: `${apiToken}-revoked` })));
    expect(error.message).toContain('refused the API token (401 Unauthorized)');
    expect(error.message).toContain('"api" scope');
    expect(error).toMatchObject({ code: 'SLW_ERR_GITLAB_SETUP', gitlabStatus: 401, statusCode: 400 });
    expectNoSecrets(error);
    expect(error.message).not.toContain(`${apiToken}-revoked`);
    expect(calls()).toEqual(['GET /api/v4/projects/platform%2Fpayments%2Fpayments-api']);
  });

  it('names the project GitLab has no trace of, and what to check', async () => {
    const error = await rejection(registerGitLabProject(options({ project: 'platform/payments/ledger' })));
    expect(error.message).toBe(
      `GitLab at ${gitlab.url} has no project platform/payments/ledger that the API token can see (404 Not Found): ` +
        "check the project's full path (group/subgroup/project, as in its URL) or its numeric ID, and that the " +
        "token's user is a member: GitLab answers 404 for private projects a token cannot see.",
    );
    expect(error).toMatchObject({ gitlabStatus: 404, statusCode: 400 });
    expectNoSecrets(error);
    expect(gitlab.hooks).toHaveLength(0);
  });

  it('says webhooks need the Maintainer role when GitLab answers 403', async () => {
    gitlab.addProject({
      id: 21,
      path_with_namespace: 'platform/billing',
      default_branch: 'main',
      role: 'developer',
    });
    const error = await rejection(registerGitLabProject(options({ project: 'platform/billing' })));
    expect(error.message).toContain(
      'does not let the API token list the webhooks of platform/billing (403 Forbidden',
    );
    expect(error.message).toContain('Maintainer role');
    expect(error).toMatchObject({ gitlabStatus: 403, statusCode: 400 });
    expectNoSecrets(error);
  });

  it('says when GitLab cannot be reached, without the token', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const error = await rejection(registerGitLabProject(options({ apiUrl: `http://127.0.0.1:${port}` })));
    expect(error.message).toBe(
      `could not reach GitLab at http://127.0.0.1:${port} to find project ${projectPath}: ECONNREFUSED.`,
    );
    expect(error).toMatchObject({ gitlabStatus: undefined, statusCode: 502 });
    expectNoSecrets(error);
  });

  it('gives up on a GitLab that does not answer, after timeoutMs', async () => {
    const silent = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const error = await rejection(registerGitLabProject(options({ apiUrl: silentUrl, timeoutMs: 300 })));
      expect(error.message).toBe(
        `GitLab at ${silentUrl} did not answer within 0.3 s when asked to find project ${projectPath}.`,
      );
      expect(error).toMatchObject({ statusCode: 502 });
      expectNoSecrets(error);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('refuses an API URL with credentials in it before calling GitLab', async () => {
    const error = await rejection(
      registerGitLabProject(options({ apiUrl: gitlab.url.replace('http://', 'http://root:hunter2@') })),
    );
    expect(error.message).toBe(
      'the GitLab URL must be the instance address only, without credentials, query or fragment',
    );
    expect(error).toMatchObject({ gitlabStatus: undefined, statusCode: 400 });
    expect(gitlab.requests).toHaveLength(0);
  });

  it('checks the deploy key before changing anything on GitLab', async () => {
    const error = await rejection(
      registerGitLabProject(options({ deployKey: { title: 'pasted', publicKey: deployKey.privateKey } })),
    );
    expect(error.message).toContain('the deploy key is not an SSH public key');
    expect(error).toMatchObject({ statusCode: 400 });
    expect(gitlab.requests).toHaveLength(0);
  });
});

describe('unregistering a GitLab project', () => {
  it('removes the hook and the deploy key it added, and is a no-op the second time', async () => {
    gitlab.addHook(15, 'https://chat.example.com/hooks/keep');
    const registration = await registerGitLabProject(options());
    gitlab.requests.length = 0;
    const removal = {
      apiUrl: gitlab.url,
      token: apiToken,
      project: projectPath,
      hookId: registration.hookId,
      deployKeyId: registration.deployKeyId,
    };

    expect(await unregisterGitLabProject(removal)).toEqual({ hooksRemoved: 1, deployKeyRemoved: true });
    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      `DELETE /api/v4/projects/15/hooks/${registration.hookId}`,
      `DELETE /api/v4/projects/15/deploy_keys/${registration.deployKeyId}`,
    ]);
    for (const request of gitlab.requests) expect(request.privateToken).toBe(apiToken);
    expect(gitlab.hooksOf(15).map((h) => h.url)).toEqual(['https://chat.example.com/hooks/keep']);
    expect(gitlab.deployKeysOf(15)).toEqual([]);

    expect(await unregisterGitLabProject(removal)).toEqual({ hooksRemoved: 0, deployKeyRemoved: false });
  });

  it('finds the hooks by URL when the hook ID is not known', async () => {
    gitlab.addHook(15, webhookUrl);
    gitlab.addHook(15, webhookUrl);
    gitlab.addHook(15, 'https://chat.example.com/hooks/keep');
    const result = await unregisterGitLabProject({
      apiUrl: gitlab.url,
      token: apiToken,
      project: projectPath,
      webhookUrl,
    });
    expect(result).toEqual({ hooksRemoved: 2, deployKeyRemoved: false });
    expect(gitlab.hooksOf(15).map((h) => h.url)).toEqual(['https://chat.example.com/hooks/keep']);
  });
});

describe('syncing a GitLab project', () => {
  const movedUrl = 'https://registry.example.org/webhooks/gitlab/trg_4kq9z2';
  const registered = () => registerGitLabProject(options());
  const syncOptions = (hookId: number) => ({ ...options({ webhookUrl: movedUrl }), hookId });

  it('moves the hook to the new URL in place, with the secret, and keeps the deploy key', async () => {
    const { hookId, deployKeyId } = await registered();
    gitlab.requests.length = 0;

    const sync = await syncGitLabProject({ ...syncOptions(hookId), webhookSecret: 'new-secret' });

    expect(sync).toEqual({ hookId, hookRecreated: false, deployKeyId, deployKeyRecreated: false });
    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      `PUT /api/v4/projects/15/hooks/${hookId}`,
      'GET /api/v4/projects/15/deploy_keys?per_page=100',
    ]);
    expect(gitlab.hooksOf(15)).toEqual([
      expect.objectContaining({ id: hookId, url: movedUrl, push_events: true, tag_push_events: true }),
    ]);
    expect(gitlab.hookTokens.get(hookId)).toBe('new-secret');
  });

  it('adds back a hook and a deploy key deleted in GitLab', async () => {
    const { hookId } = await registered();
    gitlab.hooks.length = 0;
    gitlab.deployKeys.length = 0;

    const sync = await syncGitLabProject(syncOptions(hookId));

    expect(sync).toMatchObject({ hookRecreated: true, deployKeyRecreated: true });
    expect(sync.hookId).not.toBe(hookId);
    expect(gitlab.hooksOf(15)).toEqual([expect.objectContaining({ id: sync.hookId, url: movedUrl })]);
    expect(gitlab.hookTokens.get(sync.hookId)).toBe(webhookSecret);
    expect(gitlab.deployKeysOf(15)).toEqual([
      expect.objectContaining({ id: sync.deployKeyId, key: deployKey.publicKey, can_push: false }),
    ]);
  });

  it('adopts a hook someone added by hand with the new URL rather than adding a second', async () => {
    const { hookId } = await registered();
    gitlab.hooks.length = 0;
    const byHand = gitlab.addHook(15, movedUrl);

    const sync = await syncGitLabProject({ ...syncOptions(hookId), deployKey: undefined });

    expect(sync).toEqual({ hookId: byHand.id, hookRecreated: true });
    expect(gitlab.hooksOf(15)).toHaveLength(1);
    expect(gitlab.hookTokens.get(byHand.id as number)).toBe(webhookSecret);
  });

  it('says a revoked token is to be replaced, changing nothing', async () => {
    const { hookId } = await registered();
    gitlab.token = 'glpat-someone-revoked-it';
    try {
      const error = await rejection(syncGitLabProject(syncOptions(hookId)));
      expect(error.message).toContain('refused the API token (401 Unauthorized)');
      expect(error.message).toContain('give that one');
      expect(error.statusCode).toBe(400);
      expectNoSecrets(error);
      expect(gitlab.hooksOf(15)[0]).toMatchObject({ url: webhookUrl });
    } finally {
      gitlab.token = apiToken;
    }
  });
});

describe('generating a deploy key', () => {
  it('writes an OpenSSH private key and an ssh-ed25519 public line', () => {
    const pair = generateSshDeployKey('slipway trg_1\nsecond line');
    expect(pair.privateKey).toMatch(
      /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/,
    );
    expect(pair.publicKey).toMatch(
      /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} slipway trg_1 second line$/,
    );
    expect(pair.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(generateSshDeployKey().publicKey).not.toBe(pair.publicKey);
  });

  it('produces a key ssh-keygen reads and signs with', async () => {
    requireTool('ssh-keygen', 'openssh-client');
    const dir = await mkdtemp(join(tmpdir(), 'slipway-deploy-key-'));
    try {
      const pair = generateSshDeployKey('slipway trg_2');
      const keyFile = join(dir, 'id_ed25519');
      await writeFile(keyFile, pair.privateKey, { mode: 0o600 });
      expect((await run('ssh-keygen', ['-y', '-f', keyFile])).stdout.trim()).toBe(pair.publicKey);
      expect(sshPublicKeyOf(pair.privateKey)).toBe(pair.publicKey.split(' ').slice(0, 2).join(' '));
      expect((await run('ssh-keygen', ['-l', '-f', keyFile])).stdout.trim()).toBe(
        `256 ${pair.fingerprint} slipway trg_2 (ED25519)`,
      );
      // A signature that verifies shows the private half matches the public one.
      const data = join(dir, 'data');
      await writeFile(data, 'checked out by slipway\n');
      await run('ssh-keygen', ['-Y', 'sign', '-q', '-f', keyFile, '-n', 'file', data]);
      await writeFile(join(dir, 'allowed'), `builder ${pair.publicKey}\n`);
      const verify = `ssh-keygen -Y verify -f ${join(dir, 'allowed')} -I builder -n file -s ${data}.sig < ${data}`;
      expect((await run('sh', ['-c', verify])).stdout).toContain('Good "file" signature for builder');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the public key of a private key', () => {
  it('reads it from OpenSSH private keys as ssh-keygen writes them, even encrypted ones', async () => {
    requireTool('ssh-keygen', 'openssh-client');
    const dir = await mkdtemp(join(tmpdir(), 'slipway-public-key-'));
    try {
      for (const [type, passphrase] of [
        ['ed25519', ''],
        ['rsa', ''],
        ['ecdsa', 'a passphrase'],
      ] as const) {
        const keyFile = join(dir, `id_${type}`);
        await run('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', 'ci@example', '-f', keyFile]);
        const publicLine = (await readFile(`${keyFile}.pub`, 'utf8')).trim();
        expect(sshPublicKeyOf(await readFile(keyFile, 'utf8'))).toBe(
          publicLine.split(' ').slice(0, 2).join(' '),
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives null for what is not an OpenSSH private key', () => {
    expect(
      sshPublicKeyOf('-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n-----END RSA PRIVATE KEY-----\n'),
    ).toBeNull();
    expect(
      sshPublicKeyOf('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----'),
    ).toBeNull();
    expect(sshPublicKeyOf('')).toBeNull();
  });
});
