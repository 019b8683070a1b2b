import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntryResource, SubscriptionResource } from '../../../src/cli/resources.ts';
import { ApiCaller, type ApiAnswer } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

interface SubscriptionList {
  subscriptions: SubscriptionResource[];
}

interface AuditPage {
  entries: AuditEntryResource[];
}

const whsec = /^whsec_[A-Za-z0-9+/]{43}=$/;
const hook = 'https://hooks.example.com/slipway';
const slackUrl = 'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX';

describe('REST API: notifications of a repository or a namespace', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  /** alice administers the organization acme; bob is a member who reads acme/app; dave administers acme/app only. */
  let alice: ApiCaller;
  let bob: ApiCaller;
  let carol: ApiCaller;
  let dave: ApiCaller;
  let erin: ApiCaller;
  const as = (username: string) => ApiCaller.as(slipway, basic(username, `${username}-password`));

  const createIn = (caller: ApiCaller, collection: string, body: Record<string, unknown>) =>
    caller.post<SubscriptionResource>(`${collection}/notifications`, body);

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) {
      await root.post('/users', { name, password: `${name}-password` });
    }
    await root.post('/organizations', { name: 'acme' });
    await root.put('/organizations/acme/teams/admins', { role: 'admin' });
    await root.put('/organizations/acme/teams/admins/members/alice');
    await root.put('/organizations/acme/teams/devs', { role: 'member' });
    await root.put('/organizations/acme/teams/devs/members/bob');
    await root.put('/organizations/acme/teams/devs/members/dave');
    for (const name of ['acme/app', 'acme/web', 'acme/tools/lint'])
      await root.post('/repositories', { name });
    await root.put('/repositories/acme/app/permissions/user/bob', { role: 'read' });
    await root.put('/repositories/acme/app/permissions/user/dave', { role: 'admin' });
    [alice, bob, carol, dave, erin] = ['alice', 'bob', 'carol', 'dave', 'erin'].map(as) as [
      ApiCaller,
      ApiCaller,
      ApiCaller,
      ApiCaller,
      ApiCaller,
    ];
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  it('creates, lists, reads, changes and deletes a subscription of a repository; its secret shows only at creation', async () => {
    const created = await createIn(alice, '/repositories/acme/app', {
      events: ['repo_push', 'repo_tag_deleted'],
      method: 'webhook',
      url: hook,
      filter: 'v*',
      title: 'Deploy hook',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      namespace: 'acme',
      repository: 'acme/app',
      title: 'Deploy hook',
      events: ['repo_push', 'repo_tag_deleted'],
      filter: 'v*',
      method: 'webhook',
      url: hook,
      format: 'standard',
      enabled: true,
      disabledReason: null,
      consecutiveFailures: 0,
      createdBy: 'alice',
    });
    expect(created.body.secret).toMatch(whsec);
    const { id, secret } = created.body;

    const listed = await alice.get<SubscriptionList>('/repositories/acme/app/notifications');
    expect(listed.status).toBe(200);
    expect(listed.body.subscriptions.map((s) => s.id)).toEqual([id]);
    const read = await alice.get<SubscriptionResource>(`/notifications/${id}`);
    expect(read.status).toBe(200);
    const { secret: _secret, ...withoutSecret } = created.body;
    expect(read.body).toEqual(withoutSecret);
    for (const answer of [listed, read]) expect(JSON.stringify(answer.body)).not.toContain(secret!);

    const renamed = await alice.patch<SubscriptionResource>(`/notifications/${id}`, {
      title: 'Release hook',
      events: ['repo_push'],
      filter: null,
      format: 'cloudevents',
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({
      title: 'Release hook',
      events: ['repo_push'],
      filter: null,
      format: 'cloudevents',
    });
    expect(renamed.body).not.toHaveProperty('secret');

    const newSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const rotated = await alice.patch<SubscriptionResource>(`/notifications/${id}`, { secret: newSecret });
    expect(rotated.body.secret).toBe(newSecret);
    expect((await slipway.services.subscriptions.get(id))!.secret).toBe(newSecret);
    expect(JSON.stringify((await alice.get(`/notifications/${id}`)).body)).not.toContain(newSecret);

    expect(
      (await alice.patch<SubscriptionResource>(`/notifications/${id}`, { enabled: false })).body.enabled,
    ).toBe(false);
    expect(
      (await alice.patch<SubscriptionResource>(`/notifications/${id}`, { enabled: true })).body.enabled,
    ).toBe(true);
    const nothing = await alice.patch(`/notifications/${id}`, {});
    expect(nothing.status).toBe(400);
    expect(nothing.body.error?.message).toMatch(/^nothing to change/);

    expect((await alice.delete(`/notifications/${id}`)).status).toBe(204);
    const gone = await alice.get(`/notifications/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error).toEqual({
      code: 'SLW_ERR_NOT_FOUND',
      message: `subscription ${id} does not exist or you cannot see it`,
    });
    expect((await alice.delete(`/notifications/${id}`)).status).toBe(404);
    expect((await alice.get('/notifications/not-a-uuid')).status).toBe(404);
  });

  it('re-enables a subscription Slipway disabled after failures, forgetting them', async () => {
    const { body } = await createIn(alice, '/repositories/acme/web', {
      events: ['repo_push'],
      method: 'webhook',
      url: hook,
    });
    await slipway.services.db.query(
      `UPDATE subscriptions SET enabled = false, disabled_reason = 'failed 20 times in a row', consecutive_failures = 20 WHERE id = $1`,
      [body.id],
    );
    expect((await alice.get<SubscriptionResource>(`/notifications/${body.id}`)).body).toMatchObject({
      enabled: false,
      disabledReason: 'failed 20 times in a row',
      consecutiveFailures: 20,
    });
    const enabled = await alice.patch<SubscriptionResource>(`/notifications/${body.id}`, { enabled: true });
    expect(enabled.body).toMatchObject({ enabled: true, disabledReason: null, consecutiveFailures: 0 });
  });

  it('addresses a nested repository with the rest of its name URL-encoded', async () => {
    const created = await createIn(root, '/repositories/acme/tools%2Flint', {
      events: ['build_success', 'build_failure'],
      method: 'webhook',
      url: hook,
      filter: '^refs/heads/(main|release/.*)$',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ repository: 'acme/tools/lint', createdBy: adminUser });
    const listed = await root.get<SubscriptionList>('/repositories/acme/tools%2Flint/notifications');
    expect(listed.body.subscriptions.map((s) => s.id)).toEqual([created.body.id]);
  });

  it('subscribes a whole organization; Slack URLs and webhook passwords never show', async () => {
    const slack = await createIn(alice, '/namespaces/acme', {
      events: ['repo_push', 'build_failure', 'repo_mirror_sync_failed', 'subscription_disabled'],
      method: 'slack',
      url: slackUrl,
    });
    expect(slack.status).toBe(201);
    expect(slack.body).toMatchObject({
      namespace: 'acme',
      repository: null,
      method: 'slack',
      url: 'https://hooks.slack.com/…',
      title: 'Slack: 4 kinds of event',
      secret: null,
    });
    expect(JSON.stringify(slack.body)).not.toContain('XXXX');
    expect((await slipway.services.subscriptions.get(slack.body.id))!.url).toBe(slackUrl);

    const withPassword = await createIn(alice, '/namespaces/acme', {
      events: ['repo_push'],
      method: 'webhook',
      url: 'https://ci:hunter2-secret@ci.example.com/hook?project=7',
    });
    expect(withPassword.body.url).toBe('https://ci:***@ci.example.com/hook?project=7');
    expect(JSON.stringify((await alice.get(`/notifications/${withPassword.body.id}`)).body)).not.toContain(
      'hunter2',
    );

    // The namespace's listing holds its own subscriptions and those of each of its repositories.
    const app = await createIn(alice, '/repositories/acme/app', {
      events: ['repo_push'],
      method: 'webhook',
      url: hook,
    });
    const all = await alice.get<SubscriptionList>('/namespaces/acme/notifications');
    expect(all.status).toBe(200);
    const ids = all.body.subscriptions.map((s) => s.id);
    expect(ids).toEqual(expect.arrayContaining([slack.body.id, withPassword.body.id, app.body.id]));
    expect(
      (await alice.get<SubscriptionList>('/repositories/acme/app/notifications')).body.subscriptions.map(
        (s) => s.id,
      ),
    ).not.toContain(slack.body.id);
  });

  it("lets a user manage their own namespace's subscriptions and nobody else's but a superuser", async () => {
    await root.post('/repositories', { name: 'erin/site' });
    const own = await createIn(erin, '/namespaces/erin', {
      events: ['repo_push'],
      method: 'webhook',
      url: hook,
    });
    expect(own.status).toBe(201);
    expect(
      (
        await createIn(erin, '/repositories/erin/site', {
          events: ['repo_push'],
          method: 'webhook',
          url: hook,
        })
      ).status,
    ).toBe(201);

    const refused = await alice.get('/namespaces/erin/notifications');
    expect(refused.status).toBe(403);
    expect(refused.body.error?.message).toBe("only erin can manage erin's notifications");
    expect(
      (await createIn(alice, '/namespaces/erin', { events: ['repo_push'], method: 'webhook', url: hook }))
        .status,
    ).toBe(403);
    expect((await alice.get(`/notifications/${own.body.id}`)).status).toBe(404);
    expect((await root.get(`/notifications/${own.body.id}`)).status).toBe(200);
    expect(
      (await root.get<SubscriptionList>('/namespaces/erin/notifications')).body.subscriptions,
    ).toHaveLength(2);
  });

  it('refuses bad subscriptions with 400 and a clear message, and creates nothing', async () => {
    const count = async () =>
      (await root.get<SubscriptionList>('/namespaces/acme/notifications')).body.subscriptions.length;
    const before = await count();
    const refused = async (body: Record<string, unknown>, collection = '/repositories/acme/app') => {
      const answer: ApiAnswer<SubscriptionResource> = await createIn(alice, collection, body);
      expect(answer.status, JSON.stringify(answer.body)).toBe(400);
      expect(answer.body.error?.code).toBe('SLW_ERR_INVALID');
      return answer.body.error!.message;
    };
    const webhook = { method: 'webhook', url: hook };

    expect(await refused({ ...webhook, events: ['repo_push', 'repo_pushed'] })).toBe(
      'body/events/1: unknown event kind "repo_pushed"; known kinds: repo_push, repo_tag_deleted, build_queued, build_start, build_success, build_failure, build_cancelled, repo_mirror_sync_started, repo_mirror_sync_success, repo_mirror_sync_failed, subscription_disabled',
    );
    expect(await refused({ ...webhook, events: [] })).toMatch(/^body\/events: /);
    expect(
      await refused({ method: 'webhook', url: 'ftp://files.example.com/hook', events: ['repo_push'] }),
    ).toBe('url must be http:// or https://, not ftp:');
    expect(await refused({ method: 'webhook', url: 'not a url', events: ['repo_push'] })).toBe(
      'url "not a url" is not a URL',
    );
    expect(await refused({ ...webhook, events: ['repo_push'], secret: 'whsec_tooShort' })).toMatch(
      /^secret must be whsec_ and the base64 of 24 to 64 random bytes/,
    );
    expect(await refused({ ...webhook, events: ['repo_push', 'build_success'], filter: 'v*' })).toMatch(
      /^a filter is a tag glob for repo_push and repo_tag_deleted, or a ref regex for build events/,
    );
    expect(await refused({ ...webhook, events: ['build_success'], filter: 'refs/heads/(main' })).toMatch(
      /^filter is not a valid regular expression: /,
    );
    expect(await refused({ ...webhook, events: ['repo_push'], method: 'email' })).toMatch(/^body\/method: /);
    expect(
      await refused({
        method: 'slack',
        url: slackUrl,
        events: ['repo_push'],
        secret: `whsec_${'A'.repeat(43)}=`,
      }),
    ).toMatch(/^a Slack subscription has no secret/);
    expect(await refused({ ...webhook, event: 'repo_push', events: ['repo_push'] })).toMatch(/event/);

    expect(await count()).toBe(before);
    const id = (await createIn(alice, '/namespaces/acme', { ...webhook, events: ['repo_push'] })).body.id;
    const badChange = await alice.patch(`/notifications/${id}`, { events: ['build_start'], filter: '*' });
    expect(badChange.status).toBe(400);
    expect(badChange.body.error?.message).toMatch(/^filter is not a valid regular expression/);
    expect((await alice.get<SubscriptionResource>(`/notifications/${id}`)).body.events).toEqual([
      'repo_push',
    ]);
  });

  it('shows subscriptions only to administrators: members get 403 or 404, outsiders 404', async () => {
    const repositoryWide = (
      await createIn(alice, '/repositories/acme/app', {
        events: ['repo_push'],
        method: 'webhook',
        url: hook,
      })
    ).body.id;
    const namespaceWide = (
      await createIn(alice, '/namespaces/acme', {
        events: ['repo_push'],
        method: 'webhook',
        url: hook,
      })
    ).body.id;

    // bob reads acme/app and belongs to acme: refused the collections, and the subscriptions do not exist.
    expect((await bob.get('/repositories/acme/app/notifications')).status).toBe(403);
    expect(
      (await createIn(bob, '/repositories/acme/app', { events: ['repo_push'], method: 'webhook', url: hook }))
        .status,
    ).toBe(403);
    expect((await bob.get('/namespaces/acme/notifications')).status).toBe(403);
    for (const id of [repositoryWide, namespaceWide]) {
      expect((await bob.get(`/notifications/${id}`)).status).toBe(404);
      expect((await bob.patch(`/notifications/${id}`, { enabled: false })).status).toBe(404);
      expect((await bob.delete(`/notifications/${id}`)).status).toBe(404);
      expect((await bob.post(`/notifications/${id}/test`)).status).toBe(404);
      expect((await bob.get(`/notifications/${id}/deliveries`)).status).toBe(404);
    }

    // carol is an outsider: nothing of acme exists for her.
    expect((await carol.get('/repositories/acme/app/notifications')).status).toBe(404);
    expect((await carol.get('/namespaces/acme/notifications')).status).toBe(404);
    expect((await carol.get(`/notifications/${repositoryWide}`)).status).toBe(404);

    // dave administers acme/app alone: its subscriptions, not the organization's.
    expect((await dave.get(`/notifications/${repositoryWide}`)).status).toBe(200);
    expect((await dave.get('/repositories/acme/app/notifications')).status).toBe(200);
    expect((await dave.get(`/notifications/${namespaceWide}`)).status).toBe(404);
    expect((await dave.get('/namespaces/acme/notifications')).status).toBe(403);

    const anonymous = ApiCaller.as(slipway, undefined);
    for (const path of ['/namespaces/acme/notifications', `/notifications/${repositoryWide}`]) {
      const answer = await anonymous.get(path);
      expect(answer.status).toBe(401);
      expect(answer.body.error?.code).toBe('SLW_ERR_UNAUTHENTICATED');
    }
    expect((await alice.get(`/notifications/${namespaceWide}`)).body).toMatchObject({ enabled: true });
  });

  it('records who created, changed and deleted each subscription, without its URL or secret', async () => {
    const created = await createIn(alice, '/repositories/acme/web', {
      events: ['repo_push'],
      method: 'webhook',
      url: 'https://audited.example.com/hook',
      title: 'Audited',
    });
    const { id } = created.body;
    await alice.patch(`/notifications/${id}`, { title: 'Audited twice', enabled: false });
    await alice.delete(`/notifications/${id}`);
    await slipway.services.auth.audit.flush();

    const answer = await alice.get<AuditPage>(
      '/audit?repository=acme/web&kind=add_repo_notification,change_repo_notification,delete_repo_notification',
    );
    expect(answer.status).toBe(200);
    const entries = answer.body.entries.filter((entry) => entry.target === id);
    expect(entries.map((entry) => entry.kind)).toEqual([
      'delete_repo_notification',
      'change_repo_notification',
      'add_repo_notification',
    ]);
    expect(entries.every((entry) => entry.actor === 'alice' && entry.namespace === 'acme')).toBe(true);
    expect(entries[2]!.metadata).toEqual({
      title: 'Audited',
      method: 'webhook',
      events: ['repo_push'],
      filter: null,
      format: 'standard',
    });
    expect(entries[1]!.metadata).toMatchObject({ changed: ['title', 'enabled'], enabled: false });
    const logged = JSON.stringify(answer.body);
    expect(logged).not.toContain('audited.example.com');
    expect(logged).not.toContain(created.body.secret!);
  });

  it('lists the notification routes and resources in the OpenAPI document', async () => {
    const document = (await (await fetch(`${slipway.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations).toEqual(
      expect.arrayContaining([
        'GET /api/v1/repositories/{namespace}/{name}/notifications',
        'POST /api/v1/repositories/{namespace}/{name}/notifications',
        'GET /api/v1/namespaces/{namespace}/notifications',
        'POST /api/v1/namespaces/{namespace}/notifications',
        'GET /api/v1/notifications/{id}',
        'PATCH /api/v1/notifications/{id}',
        'DELETE /api/v1/notifications/{id}',
        'POST /api/v1/notifications/{id}/test',
        'GET /api/v1/notifications/{id}/deliveries',
        'GET /api/v1/notifications/{id}/deliveries/{deliveryId}',
        'POST /api/v1/notifications/{id}/deliveries/{deliveryId}/replay',
      ]),
    );
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining(['Subscription', 'IssuedSubscription', 'Delivery', 'DeliveryAttempt']),
    );
  });
});
