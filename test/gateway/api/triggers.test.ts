import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { basicOf, IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';
import type { IssuedTriggerResource, TriggerResource } from '../../../src/cli/resources.ts';

/** Build triggers through /api/v1, against a gateway with authentication on. */
describe('/api/v1 build triggers', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  let asAdmin: ApiCaller;
  let asReader: ApiCaller;
  let asOutsider: ApiCaller;

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
    const admin = await fixtures.user('alice');
    const reader = await fixtures.user('rita');
    const outsider = await fixtures.user('otto');
    await fixtures.grant('acme/app', { user: 'alice' }, 'admin');
    await fixtures.grant('acme/app', { user: 'rita' }, 'read');
    asAdmin = ApiCaller.as(slipway, basicOf(admin));
    asReader = ApiCaller.as(slipway, basicOf(reader));
    asOutsider = ApiCaller.as(slipway, basicOf(outsider));
  });

  afterAll(async () => {
    await slipway?.stop();
  });

  const githubTrigger = {
    provider: 'github',
    cloneUrl: 'https://github.com/acme/app.git',
    credentials: { token: 'ghp_clone-token-never-shown', username: 'x-access-token' },
    refFilter: 'heads/main|tags/v.*',
    buildArgs: { NODE_ENV: 'production' },
    tagTemplates: ['${branch}', '${tag}', '${branch}-${short_sha}'],
  };

  it('lets a repository admin create a trigger; the secret is shown in that answer only', async () => {
    const created = await asAdmin.post<IssuedTriggerResource>(
      '/repositories/acme/app/triggers',
      githubTrigger,
    );
    expect(created.status).toBe(201);
    const { id, webhookSecret } = created.body;
    expect(created.body).toMatchObject({
      repository: 'acme/app',
      provider: 'github',
      webhookUrl: `${slipway.url}/webhooks/github/${id}`,
      cloneUrl: 'https://github.com/acme/app.git',
      credentials: { kind: 'token', username: 'x-access-token' },
      refFilter: 'heads/main|tags/v.*',
      dockerfile: 'Dockerfile',
      context: '.',
      latestOnDefaultBranch: true,
      enabled: true,
      createdBy: 'alice',
    });
    expect(webhookSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(created.body)).not.toContain('ghp_clone-token-never-shown');

    const shown = await asAdmin.get<TriggerResource>(`/triggers/${id}`);
    expect(shown.status).toBe(200);
    expect(shown.body).not.toHaveProperty('webhookSecret');
    const listed = await asAdmin.get<{ triggers: TriggerResource[] }>('/repositories/acme/app/triggers');
    expect(listed.body.triggers.map((trigger) => trigger.id)).toEqual([id]);
    expect(JSON.stringify(listed.body)).not.toContain(webhookSecret);

    const audit = await root.get<{ entries: Array<{ kind: string; target: string }> }>(
      '/audit?repository=acme/app&kind=setup_repo_trigger',
    );
    expect(audit.body.entries).toEqual([expect.objectContaining({ kind: 'setup_repo_trigger', target: id })]);
    expect(JSON.stringify(audit.body)).not.toContain('ghp_clone-token-never-shown');
  });

  it('hides triggers from readers and outsiders', async () => {
    const { body } = await asAdmin.get<{ triggers: TriggerResource[] }>('/repositories/acme/app/triggers');
    const id = body.triggers[0]!.id;
    expect((await asReader.get(`/triggers/${id}`)).status).toBe(404);
    expect((await asOutsider.get(`/triggers/${id}`)).status).toBe(404);
    expect((await asReader.get('/repositories/acme/app/triggers')).status).toBe(403);
    expect((await asOutsider.get('/repositories/acme/app/triggers')).status).toBe(404);
    expect((await asReader.post('/repositories/acme/app/triggers', githubTrigger)).status).toBe(403);
    expect((await asOutsider.patch(`/triggers/${id}`, { enabled: false })).status).toBe(404);
    expect((await ApiCaller.as(slipway, undefined).get(`/triggers/${id}`)).status).toBe(401);
  });

  it('refuses settings it cannot use', async () => {
    const badFilter = await asAdmin.post('/repositories/acme/app/triggers', {
      ...githubTrigger,
      refFilter: '(',
    });
    expect(badFilter.status).toBe(400);
    const badUrl = await asAdmin.post('/repositories/acme/app/triggers', {
      ...githubTrigger,
      cloneUrl: 'ext::sh -c touch% /tmp/pwned',
    });
    expect(badUrl.status).toBe(400);
  });

  it('changes, disables and deletes a trigger, auditing each change', async () => {
    const created = await asAdmin.post<IssuedTriggerResource>('/repositories/acme/app/triggers', {
      provider: 'gitlab',
      cloneUrl: 'https://gitlab.example.com/acme/app.git',
    });
    const id = created.body.id;
    const changed = await asAdmin.patch<TriggerResource>(`/triggers/${id}`, {
      dockerfile: 'build/Dockerfile',
      enabled: false,
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      dockerfile: 'build/Dockerfile',
      enabled: false,
      disabledReason: 'disabled by alice',
    });
    expect((await asAdmin.patch(`/triggers/${id}`, {})).status).toBe(400);
    expect((await asAdmin.delete(`/triggers/${id}`)).status).toBe(204);
    expect((await asAdmin.get(`/triggers/${id}`)).status).toBe(404);
    const audit = await root.get<{ entries: Array<{ kind: string; target: string }> }>(
      '/audit?repository=acme/app',
    );
    const kinds = audit.body.entries.filter((entry) => entry.target === id).map((entry) => entry.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['setup_repo_trigger', 'change_repo_trigger', 'delete_repo_trigger']),
    );
  });

  it('replaces the webhook secret, showing the new one once', async () => {
    const created = await asAdmin.post<IssuedTriggerResource>('/repositories/acme/app/triggers', {
      provider: 'custom',
      cloneUrl: 'git@git.example.com:acme/app.git',
    });
    const rotated = await asAdmin.post<IssuedTriggerResource>(`/triggers/${created.body.id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.webhookSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(rotated.body.webhookSecret).not.toBe(created.body.webhookSecret);
    expect(await slipway.services.triggers.webhookSecret(created.body.id)).toBe(rotated.body.webhookSecret);
  });

  it('writes a post-receive hook for a custom git trigger, with the secret in it only when asked', async () => {
    const created = await asAdmin.post<IssuedTriggerResource>('/repositories/acme/app/triggers', {
      provider: 'custom',
      cloneUrl: 'ssh://git@git.example.com/acme/app.git',
    });
    const { id, webhookSecret, webhookUrl } = created.body;
    const hook = (query: string) =>
      fetch(`${slipway.url}/api/v1/triggers/${id}/hook-script${query}`, {
        headers: { Authorization: basic('alice', 'alice-password-1') },
      });

    const fromEnv = await hook('?secretEnv=SLIPWAY_HOOK_SECRET');
    expect(fromEnv.status).toBe(200);
    expect(fromEnv.headers.get('content-type')).toMatch(/^text\/plain/);
    const script = await fromEnv.text();
    expect(script).toMatch(/^#!\/bin\/sh\n/);
    expect(script).toContain(`webhook_url='${webhookUrl}'`);
    expect(script).toContain('secret="$SLIPWAY_HOOK_SECRET"');
    expect(script).not.toContain(webhookSecret);

    const embedded = await (await hook('')).text();
    expect(embedded).toContain(`secret='${webhookSecret}'`);

    expect((await hook('?secretEnv=not%20a%20name')).status).toBe(400);
    const { body } = await asAdmin.get<{ triggers: TriggerResource[] }>('/repositories/acme/app/triggers');
    const github = body.triggers.find((trigger) => trigger.provider === 'github')!;
    expect((await asAdmin.get(`/triggers/${github.id}/hook-script`)).status).toBe(400);
    expect((await asReader.get(`/triggers/${id}/hook-script`)).status).toBe(404);
  });
});
