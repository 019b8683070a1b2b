import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type {
  DeletedTriggerResource,
  GitLabLinkResource,
  IssuedTriggerResource,
  TriggerResource,
} from '../../../src/cli/resources.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { FakeGitLab, fakeGitLabToken, deliverGitLabEvent } from '../../helpers/fake-gitlab.ts';
import { basicOf, IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

/*
 * GitLab triggers Slipway sets up itself with the user's GitLab API token, through /api/v1, against
 * FakeGitLab standing in for GitLab's REST API.
 */

type Issued = IssuedTriggerResource & { gitlab: GitLabLinkResource | null };
type Shown = TriggerResource & { gitlab: GitLabLinkResource | null };
type Deleted = DeletedTriggerResource;

const apiToken = fakeGitLabToken;
const projectPath = 'acme/app';

describe('/api/v1 GitLab triggers set up through the GitLab API', () => {
  const gitlab = new FakeGitLab();
  let slipway: TestSlipway;
  let root: ApiCaller;
  let asAdmin: ApiCaller;

  beforeAll(async () => {
    await gitlab.start();
    slipway = await startSecuredSlipway();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
    const admin = await fixtures.user('alice');
    await fixtures.grant('acme/app', { user: 'alice' }, 'admin');
    asAdmin = ApiCaller.as(slipway, basicOf(admin));
  });

  afterAll(async () => {
    await slipway?.stop();
    await gitlab.stop();
  });

  beforeEach(() => {
    gitlab.reset();
    gitlab.token = apiToken;
    gitlab.addProject({
      id: 42,
      path_with_namespace: projectPath,
      default_branch: 'main',
      role: 'maintainer',
    });
  });

  const setup = (overrides: Record<string, unknown> = {}) => ({
    provider: 'gitlab',
    gitlab: { apiUrl: gitlab.url, token: apiToken, project: projectPath, ...overrides },
  });

  const create = (body: Record<string, unknown>) =>
    asAdmin.post<Issued>('/repositories/acme/app/triggers', body);

  it('registers the webhook and a read-only deploy key, and clones over SSH with that key', async () => {
    const created = await create(setup());
    expect(created.status).toBe(201);
    const { id, webhookSecret, webhookUrl } = created.body;
    expect(webhookUrl).toBe(`${slipway.url}/webhooks/gitlab/${id}`);

    const [hook] = gitlab.hooksOf(42);
    const [key] = gitlab.deployKeysOf(42);
    expect(gitlab.hooksOf(42)).toHaveLength(1);
    expect(hook).toMatchObject({ url: webhookUrl, push_events: true, tag_push_events: true });
    expect(gitlab.hookTokens.get(hook?.id as number)).toBe(webhookSecret);
    expect(key).toMatchObject({ can_push: false, key: created.body.deployKey?.publicKey });
    expect(key?.fingerprint_sha256).toBe(created.body.deployKey?.fingerprint);
    for (const request of gitlab.requests) expect(request.privateToken).toBe(apiToken);

    expect(created.body).toMatchObject({
      provider: 'gitlab',
      cloneUrl: `git@gitlab.example.com:${projectPath}.git`,
      credentials: { kind: 'deploy-key' },
      gitlab: {
        apiUrl: gitlab.url,
        projectId: 42,
        projectPath,
        hookId: hook?.id,
        hookCreated: true,
        deployKeyId: key?.id,
        deployKeyCreated: true,
        tlsVerify: true,
        tokenStored: true,
      },
    });
    expect(JSON.stringify(created.body)).not.toContain(apiToken);
    const secrets = await slipway.services.triggers.cloneSecrets(id);
    expect(secrets.deployKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(JSON.stringify(created.body)).not.toContain(secrets.deployKey);

    // What GitLab was given is what the webhook checks.
    expect((await deliverGitLabEvent(webhookUrl, webhookSecret)).status).toBe(200);
    expect((await deliverGitLabEvent(webhookUrl, 'not-the-secret')).status).toBe(401);

    const shown = await asAdmin.get<Shown>(`/triggers/${id}`);
    expect(shown.body.gitlab).toMatchObject({ hookId: hook?.id, tokenStored: true });
    expect(JSON.stringify(shown.body)).not.toContain(apiToken);
    const audit = await root.get('/audit?repository=acme/app');
    expect(JSON.stringify(audit.body)).toContain(id);
    expect(JSON.stringify(audit.body)).not.toContain(apiToken);
  });

  it('clones over HTTPS from the project without a deploy key when asked', async () => {
    const created = await create(setup({ deployKey: false, tlsVerify: false }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      cloneUrl: `https://gitlab.example.com/${projectPath}.git`,
      credentials: null,
      gitlab: { deployKeyId: null, deployKeyCreated: null, tlsVerify: false },
    });
    expect(created.body.deployKey).toBeUndefined();
    expect(gitlab.deployKeysOf(42)).toEqual([]);
    expect(gitlab.hooksOf(42)[0]).toMatchObject({ enable_ssl_verification: false });
  });

  it('keeps a clone URL and credentials it is given, generating a key only for an SSH URL', async () => {
    const https = await create({
      ...setup(),
      cloneUrl: 'https://gitlab.example.com/acme/app.git',
      credentials: { token: 'glpat-clone-only-token', username: 'oauth2' },
    });
    expect(https.status).toBe(201);
    expect(https.body).toMatchObject({
      cloneUrl: 'https://gitlab.example.com/acme/app.git',
      credentials: { kind: 'token', username: 'oauth2' },
      gitlab: { deployKeyId: null },
    });
    const ssh = await create({ ...setup(), cloneUrl: 'ssh://git@gitlab.example.com:2222/acme/app.git' });
    expect(ssh.status).toBe(201);
    expect(ssh.body).toMatchObject({
      cloneUrl: 'ssh://git@gitlab.example.com:2222/acme/app.git',
      credentials: { kind: 'deploy-key' },
    });
    expect(ssh.body.gitlab?.deployKeyId).toEqual(expect.any(Number));
  });

  it('refuses GitLab settings it cannot use, before calling GitLab', async () => {
    const wrongProvider = await asAdmin.post('/repositories/acme/app/triggers', {
      ...setup(),
      provider: 'github',
      cloneUrl: 'https://github.com/acme/app.git',
    });
    expect(wrongProvider.status).toBe(400);
    expect(wrongProvider.body.error?.message).toContain('GitLab setup is for gitlab triggers');
    const keyOverHttps = await create({
      ...setup({ deployKey: true }),
      cloneUrl: 'https://gitlab.example.com/acme/app.git',
    });
    expect(keyOverHttps.status).toBe(400);
    expect(keyOverHttps.body.error?.message).toContain('a deploy key clones over SSH');
    const noCloneUrl = await create({ provider: 'gitlab' });
    expect(noCloneUrl.status).toBe(400);
    expect(noCloneUrl.body.error?.message).toContain('cloneUrl');
    for (const answer of [wrongProvider, keyOverHttps])
      expect(JSON.stringify(answer.body)).not.toContain(apiToken);
    expect(gitlab.requests).toEqual([]);
  });

  it('does not create the trigger when GitLab refuses the token, and says what to do', async () => {
    const before = await asAdmin.get<{ triggers: Shown[] }>('/repositories/acme/app/triggers');
    const revoked = `${apiToken}-revoked`;
    const refused = await create(setup({ token: revoked }));

    expect(refused.status).toBe(400);
    expect(refused.body.error).toEqual({
      code: 'SLW_ERR_GITLAB_SETUP',
      message: expect.stringContaining('the trigger was not created'),
    });
    expect(refused.body.error?.message).toContain('refused the API token (401 Unauthorized)');
    expect(refused.body.error?.message).toContain('"api" scope');
    const answer = JSON.stringify(refused.body);
    expect(answer).not.toContain(apiToken);
    expect(answer).not.toContain(revoked);
    expect(gitlab.hooks).toEqual([]);
    const after = await asAdmin.get<{ triggers: Shown[] }>('/repositories/acme/app/triggers');
    expect(after.body.triggers.map((trigger) => trigger.id)).toEqual(
      before.body.triggers.map((trigger) => trigger.id),
    );
    const audit = await root.get('/audit?repository=acme/app');
    expect(JSON.stringify(audit.body)).not.toContain(revoked);
  });

  it('removes the hook it added when GitLab refuses a later step, and creates no trigger', async () => {
    gitlab.fail('POST', /\/deploy_keys$/, 422, 'key has already been taken');
    const before = await asAdmin.get<{ triggers: Shown[] }>('/repositories/acme/app/triggers');
    const refused = await create(setup());
    expect(refused.status).toBe(400);
    expect(refused.body.error?.message).toContain('refused to add a deploy key to acme/app (422');
    expect(gitlab.requests.map((r) => r.method)).toEqual([
      'GET',
      'GET',
      'POST',
      'GET',
      'POST',
      'GET',
      'GET',
      'DELETE',
    ]);
    expect(gitlab.hooks).toEqual([]);
    const after = await asAdmin.get<{ triggers: Shown[] }>('/repositories/acme/app/triggers');
    expect(after.body.triggers).toHaveLength(before.body.triggers.length);
  });

  it('answers 502 when GitLab fails, and creates no trigger', async () => {
    gitlab.fail('GET', /^\/api\/v4\/projects\/[^/]+$/, 503, 'maintenance');
    const failed = await create(setup());
    expect(failed.status).toBe(502);
    expect(failed.body.error?.code).toBe('SLW_ERR_GITLAB_SETUP');
    expect(JSON.stringify(failed.body)).not.toContain(apiToken);
  });

  it('updates the GitLab hook token when the secret is replaced', async () => {
    const created = await create(setup());
    const { id, webhookUrl } = created.body;
    const hookId = created.body.gitlab!.hookId;
    gitlab.requests.length = 0;

    const rotated = await asAdmin.post<Issued>(`/triggers/${id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.warnings).toBeUndefined();
    expect(rotated.body.webhookSecret).not.toBe(created.body.webhookSecret);
    expect(gitlab.requests.map((r) => r.method)).toContain('PUT');
    expect(gitlab.hookTokens.get(hookId)).toBe(rotated.body.webhookSecret);
    expect(gitlab.hooksOf(42)).toHaveLength(1);
    expect(JSON.stringify(rotated.body)).not.toContain(apiToken);
    expect((await deliverGitLabEvent(webhookUrl, rotated.body.webhookSecret)).status).toBe(200);
    expect((await deliverGitLabEvent(webhookUrl, created.body.webhookSecret)).status).toBe(401);
  });

  it('moves the hook to the current public URL when the secret is replaced, adding no second one', async () => {
    const created = await create(setup());
    const { id } = created.body;
    const hookId = created.body.gitlab!.hookId;
    const { publicUrl } = slipway.services;
    const before = publicUrl.value;
    publicUrl.value = before.replace('127.0.0.1', 'localhost');
    try {
      const moved = (await asAdmin.get<Shown>(`/triggers/${id}`)).body;
      expect(moved.problem).toContain(`posts to ${created.body.webhookUrl}, not to this trigger's`);
      const rotated = await asAdmin.post<Issued>(`/triggers/${id}/secret`);
      expect(rotated.body.warnings).toBeUndefined();
      expect(rotated.body).toMatchObject({ problem: null, gitlab: { hookId, hookUrl: moved.webhookUrl } });
      expect(gitlab.hooksOf(42)).toEqual([expect.objectContaining({ id: hookId, url: moved.webhookUrl })]);
      expect((await deliverGitLabEvent(moved.webhookUrl, rotated.body.webhookSecret)).status).toBe(200);
    } finally {
      publicUrl.value = before;
    }
  });

  it('replaces the secret all the same when GitLab fails, with a warning saying what to do', async () => {
    const created = await create(setup());
    gitlab.token = 'glpat-rotated-by-the-gitlab-admin';
    const rotated = await asAdmin.post<Issued>(`/triggers/${created.body.id}/secret`);
    expect(rotated.status).toBe(200);
    expect(await slipway.services.triggers.webhookSecret(created.body.id)).toBe(rotated.body.webhookSecret);
    expect(rotated.body.warnings).toEqual([expect.stringContaining('401 Unauthorized')]);
    expect(rotated.body.warnings?.[0]).toContain(`webhook ${created.body.gitlab!.hookId} of ${projectPath}`);
    expect(JSON.stringify(rotated.body)).not.toContain(apiToken);
  });

  it('never shows the API token when a trigger is changed, and can replace or forget it', async () => {
    const created = await create(setup());
    const { id } = created.body;
    const replacement = 'glpat-replacement-token-9f3k';

    const changed = await asAdmin.patch<Shown>(`/triggers/${id}`, { dockerfile: 'build/Dockerfile' });
    expect(changed.status).toBe(200);
    expect(changed.body.gitlab).toMatchObject({ tokenStored: true });
    const replaced = await asAdmin.patch<Shown>(`/triggers/${id}`, { gitlabToken: replacement });
    expect(replaced.status).toBe(200);
    expect(await slipway.services.triggers.gitlabToken(id)).toBe(replacement);
    for (const answer of [changed, replaced]) {
      expect(JSON.stringify(answer.body)).not.toContain(apiToken);
      expect(JSON.stringify(answer.body)).not.toContain(replacement);
    }

    const forgotten = await asAdmin.patch<Shown>(`/triggers/${id}`, { gitlabToken: null });
    expect(forgotten.body.gitlab).toMatchObject({ tokenStored: false });
    expect(await slipway.services.triggers.gitlabToken(id)).toBeNull();
    gitlab.requests.length = 0;
    const rotated = await asAdmin.post<Issued>(`/triggers/${id}/secret`);
    expect(rotated.body.warnings).toEqual([expect.stringContaining('keeps no GitLab API token')]);
    expect(gitlab.requests).toEqual([]);

    const audit = await root.get('/audit?repository=acme/app');
    expect(JSON.stringify(audit.body)).not.toContain(apiToken);
    expect(JSON.stringify(audit.body)).not.toContain(replacement);

    const plain = await create({ provider: 'gitlab', cloneUrl: 'https://gitlab.example.com/acme/app.git' });
    expect(plain.body.gitlab).toBeNull();
    const refused = await asAdmin.patch(`/triggers/${plain.body.id}`, { gitlabToken: replacement });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).not.toContain(replacement);
  });

  it('removes the hook and deploy key it added when the trigger is deleted', async () => {
    gitlab.addHook(42, 'https://chat.example.com/hooks/keep');
    const created = await create(setup());
    const { id } = created.body;
    gitlab.requests.length = 0;

    const deleted = await asAdmin.delete<Deleted>(`/triggers/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({
      deleted: id,
      gitlab: { hooksRemoved: 1, deployKeyRemoved: true },
      warnings: [],
    });
    expect(gitlab.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/v4/projects/42',
      `DELETE /api/v4/projects/42/hooks/${created.body.gitlab!.hookId}`,
      `DELETE /api/v4/projects/42/deploy_keys/${created.body.gitlab!.deployKeyId}`,
    ]);
    expect(gitlab.hooksOf(42).map((hook) => hook.url)).toEqual(['https://chat.example.com/hooks/keep']);
    expect(gitlab.deployKeysOf(42)).toEqual([]);
    expect((await asAdmin.get(`/triggers/${id}`)).status).toBe(404);
  });

  it('deletes the trigger when GitLab fails, warning what is left there', async () => {
    const created = await create(setup());
    const { id } = created.body;
    gitlab.token = 'glpat-someone-else';

    const deleted = await asAdmin.delete<Deleted>(`/triggers/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.gitlab).toBeNull();
    expect(deleted.body.warnings).toEqual([expect.stringContaining('401 Unauthorized')]);
    expect(deleted.body.warnings[0]).toContain(
      `webhook ${created.body.gitlab!.hookId} and deploy key ${created.body.gitlab!.deployKeyId} of ${projectPath}`,
    );
    expect(JSON.stringify(deleted.body)).not.toContain(apiToken);
    expect((await asAdmin.get(`/triggers/${id}`)).status).toBe(404);
    expect(gitlab.hooksOf(42)).toHaveLength(1);
  });
});
