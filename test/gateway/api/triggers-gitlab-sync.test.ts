import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  IssuedTriggerResource,
  SyncedTriggerResource,
  TriggerResource,
} from '../../../src/cli/resources.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { FakeGitLab, fakeGitLabToken, deliverGitLabEvent } from '../../helpers/fake-gitlab.ts';
import { freePort } from '../../helpers/gateway-process.ts';
import { IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

/*
 * GitLab triggers after the gateway's public URL changed: the trigger shows that its hook posts to the old
 * address, a gateway started with the new public URL moves the hooks there by itself, and
 * POST /triggers/{id}/gitlab/sync does it on demand, adding back a hook or deploy key deleted in GitLab.
 * FakeGitLab stands in for GitLab; the gateway restarts on the same data directory.
 */

const oldPublicUrl = 'https://registry-old.example.test';
const projectId = 42;
const otherToken = 'glpat-second-user-Hq4Zr8Lm2Nv6';

describe('/api/v1 GitLab triggers follow a change of the public URL', () => {
  const gitlab = new FakeGitLab();
  let dataDir: string;
  let slipway: TestSlipway | undefined;
  let root: ApiCaller;
  /** Created while the gateway's public URL was the old one. */
  const created: Record<'kept' | 'revoked' | 'forgotten', IssuedTriggerResource> = {} as never;

  const start = async (config: Record<string, unknown>) => {
    await slipway?.stop();
    slipway = await startSecuredSlipway({ config: { dataDir, ...config } });
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
  };

  const create = async (token: string) => {
    const answer = await root.post<IssuedTriggerResource>('/repositories/acme/app/triggers', {
      provider: 'gitlab',
      gitlab: { apiUrl: gitlab.url, token, project: 'acme/app' },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    return answer.body;
  };

  const shown = async (id: string) => (await root.get<TriggerResource>(`/triggers/${id}`)).body;
  const hookOf = (hookId: number) => gitlab.hooksOf(projectId).find((hook) => hook.id === hookId);
  const sync = (id: string, body?: { token: string }) =>
    root.post<SyncedTriggerResource>(`/triggers/${id}/gitlab/sync`, body);

  beforeAll(async () => {
    await gitlab.start();
    gitlab.addProject({
      id: projectId,
      path_with_namespace: 'acme/app',
      default_branch: 'main',
      role: 'maintainer',
    });
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-gitlab-sync-'));
    await start({ publicUrl: oldPublicUrl });
    const fixtures = await IdentityFixtures.of(slipway!);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');

    created.kept = await create(fakeGitLabToken);
    // Set up by another GitLab user, whose token is revoked afterwards.
    gitlab.token = otherToken;
    created.revoked = await create(otherToken);
    gitlab.token = fakeGitLabToken;
    created.forgotten = await create(fakeGitLabToken);
    expect((await root.patch(`/triggers/${created.forgotten.id}`, { gitlabToken: null })).status).toBe(200);
  });

  afterAll(async () => {
    await slipway?.stop();
    await gitlab.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('shows the URL the hook was registered with, and no problem while it is the webhook URL', async () => {
    const trigger = await shown(created.kept.id);
    expect(trigger.webhookUrl).toBe(`${oldPublicUrl}/webhooks/gitlab/${created.kept.id}`);
    expect(trigger.gitlab?.hookUrl).toBe(trigger.webhookUrl);
    expect(trigger.problem).toBeNull();
    expect(hookOf(trigger.gitlab!.hookId)?.url).toBe(trigger.webhookUrl);
  });

  it('moves the hooks to the new public URL in the background when a gateway starts with it', async () => {
    const port = await freePort();
    const newPublicUrl = `http://127.0.0.1:${port}`;
    gitlab.requests.length = 0;
    await start({ listen: `127.0.0.1:${port}`, publicUrl: newPublicUrl });

    const { id, webhookSecret } = created.kept;
    const hookId = created.kept.gitlab!.hookId;
    const webhookUrl = `${newPublicUrl}/webhooks/gitlab/${id}`;
    await expect.poll(async () => (await shown(id)).gitlab?.hookUrl, { timeout: 15_000 }).toBe(webhookUrl);
    const trigger = await shown(id);
    expect(trigger).toMatchObject({ webhookUrl, problem: null, gitlab: { hookId, syncProblem: null } });
    expect(hookOf(hookId)?.url).toBe(webhookUrl);
    expect(gitlab.hookTokens.get(hookId)).toBe(webhookSecret);
    // Where GitLab now posts reaches this gateway, which checks the secret GitLab sends.
    expect((await deliverGitLabEvent(hookOf(hookId)!.url as string, webhookSecret)).status).toBe(200);

    // The revoked token: the trigger says so, and what to do; its hook is left as it was.
    const revoked = created.revoked;
    await expect
      .poll(async () => (await shown(revoked.id)).problem, { timeout: 15_000 })
      .toContain('401 Unauthorized');
    const problem = (await shown(revoked.id)).problem!;
    expect(problem).toContain('access token');
    expect(problem).toContain(`slipway trigger gitlab-sync ${revoked.id}`);
    expect(problem).not.toContain(otherToken);
    expect(hookOf(revoked.gitlab!.hookId)?.url).toBe(revoked.webhookUrl);

    // Without a kept token nothing is tried; the trigger shows where its hook still posts.
    const forgotten = await shown(created.forgotten.id);
    expect(forgotten.gitlab?.hookUrl).toBe(created.forgotten.webhookUrl);
    expect(forgotten.problem).toContain(`posts to ${created.forgotten.webhookUrl}, not to this trigger's`);
    expect(forgotten.problem).toContain(forgotten.webhookUrl);
    expect(forgotten.problem).toContain('--gitlab-token-stdin');
    expect(hookOf(forgotten.gitlab!.hookId)?.url).toBe(created.forgotten.webhookUrl);

    // Once per start: each outdated hook was updated once, and none was added.
    const puts = (hook: number) =>
      gitlab.requests.filter((r) => r.method === 'PUT' && r.path.endsWith(`/hooks/${hook}`));
    expect(puts(hookId)).toHaveLength(1);
    expect(gitlab.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect(gitlab.hooksOf(projectId)).toHaveLength(3);
  });

  it('refuses to sync with a revoked token, saying to give a new one; syncs with it and keeps it', async () => {
    const { id, webhookSecret } = created.revoked;
    const refused = await sync(id);
    expect(refused.status).toBe(400);
    const message = (refused.body as unknown as { error: { message: string } }).error.message;
    expect(message).toContain('refused the API token (401 Unauthorized)');
    expect(message).toContain(`slipway trigger gitlab-sync ${id} --gitlab-token-stdin`);
    expect(JSON.stringify(refused.body)).not.toContain(otherToken);

    const synced = await sync(id, { token: fakeGitLabToken });
    expect(synced.status, JSON.stringify(synced.body)).toBe(200);
    expect(synced.body).toMatchObject({
      problem: null,
      gitlabSync: { hookRecreated: false },
      gitlab: { hookUrl: synced.body.webhookUrl, syncProblem: null, tokenStored: true },
    });
    expect(JSON.stringify(synced.body)).not.toContain(fakeGitLabToken);
    expect(hookOf(created.revoked.gitlab!.hookId)?.url).toBe(synced.body.webhookUrl);
    expect((await deliverGitLabEvent(synced.body.webhookUrl, webhookSecret)).status).toBe(200);
    expect(await slipway!.services.triggers.gitlabToken(id)).toBe(fakeGitLabToken);

    const audit = JSON.stringify((await root.get('/audit?repository=acme/app')).body);
    expect(audit).toContain('gitlabSync');
    expect(audit).not.toContain(fakeGitLabToken);
    expect(audit).not.toContain(otherToken);
  });

  it('without a kept token, says to give one; with one, moves the hook', async () => {
    const { id } = created.forgotten;
    const refused = await sync(id);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('keeps no GitLab API token');
    const notOnGitLab = await root.post<IssuedTriggerResource>('/repositories/acme/app/triggers', {
      provider: 'gitlab',
      cloneUrl: 'https://gitlab.example.com/acme/app.git',
    });
    const refusedByHand = await sync(notOnGitLab.body.id);
    expect(refusedByHand.status).toBe(400);
    expect(JSON.stringify(refusedByHand.body)).toContain('was not set up on GitLab by Slipway');
    const synced = await sync(id, { token: fakeGitLabToken });
    expect(synced.status).toBe(200);
    expect(synced.body.problem).toBeNull();
    expect(hookOf(created.forgotten.gitlab!.hookId)?.url).toBe(synced.body.webhookUrl);
  });

  it('adds back the hook and the deploy key deleted in GitLab', async () => {
    const { id, webhookSecret, deployKey } = created.kept;
    const { hookId, deployKeyId } = created.kept.gitlab!;
    gitlab.hooks.splice(gitlab.hooks.indexOf(hookOf(hookId)!), 1);
    const key = gitlab.deployKeysOf(projectId).find((k) => k.id === deployKeyId)!;
    gitlab.deployKeys.splice(gitlab.deployKeys.indexOf(key), 1);

    const synced = await sync(id);
    expect(synced.status, JSON.stringify(synced.body)).toBe(200);
    const { gitlabSync } = synced.body;
    expect(gitlabSync).toMatchObject({ hookRecreated: true, deployKeyRecreated: true });
    expect(gitlabSync.hookId).not.toBe(hookId);
    expect(synced.body.gitlab).toMatchObject({
      hookId: gitlabSync.hookId,
      hookCreated: true,
      deployKeyId: gitlabSync.deployKeyId,
      deployKeyCreated: true,
    });
    const hook = hookOf(gitlabSync.hookId);
    expect(hook).toMatchObject({ url: synced.body.webhookUrl, push_events: true, tag_push_events: true });
    expect(gitlab.hookTokens.get(gitlabSync.hookId)).toBe(webhookSecret);
    // The same key the builder clones with: its public half as at setup (without the comment).
    const [added] = gitlab.deployKeysOf(projectId).filter((k) => k.id === gitlabSync.deployKeyId);
    const [keyType, keyBlob] = deployKey!.publicKey.split(' ');
    expect(added).toMatchObject({ key: `${keyType} ${keyBlob}`, can_push: false });
    expect((await deliverGitLabEvent(synced.body.webhookUrl, webhookSecret)).status).toBe(200);

    // Deleting the trigger now removes what was added back.
    const deleted = await root.delete(`/triggers/${id}`);
    expect(deleted.body).toMatchObject({ gitlab: { hooksRemoved: 1, deployKeyRemoved: true } });
    expect(hookOf(gitlabSync.hookId)).toBeUndefined();
  });
});
