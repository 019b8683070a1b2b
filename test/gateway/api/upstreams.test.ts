import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import {
  accessOf,
  adminPassword,
  adminUser,
  basic,
  fetchToken,
  startSecuredSlipway,
} from '../../helpers/auth.ts';
import { basicOf, IdentityFixtures, type Login } from '../../helpers/identity-fixtures.ts';
import { OciClient, type PushedImage } from '../../helpers/oci-client.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

interface UpstreamBody {
  name: string;
  url: string;
  username: string | null;
  hasPassword: boolean;
  pull: string;
  source: 'config' | 'api';
  freshness: number;
  circuit: string;
  storageBudget: number | null;
  pinned: string[];
  staleIfDeleted: boolean;
  password?: unknown;
}

interface PingBody {
  ok: boolean;
  auth: string | null;
  problem: string | null;
}

/**
 * Upstreams managed through /api/v1: the upstream is another Slipway with token authentication whose
 * repository is private, so every pull through shows the stored credentials at work.
 */
describe('/api/v1/proxy/upstreams', () => {
  const secretKey = randomBytes(32).toString('base64');
  let upstream: TestSlipway;
  let slipway: TestSlipway;
  let replica: TestSlipway;
  let image: PushedImage;
  let root: ApiCaller;
  let alice: Login;
  let bob: Login;
  let robot: Login;

  beforeAll(async () => {
    upstream = await startSecuredSlipway();
    image = await new OciClient(upstream.url, { Authorization: basic(adminUser, adminPassword) }).pushImage(
      'root/app',
      '1',
    );
    const config = { secretKey, proxy: { upstreams: [{ name: 'hub', url: upstream.url }] } };
    slipway = await startSecuredSlipway({ database: 'postgres', config });
    replica = await startSecuredSlipway({
      database: 'postgres',
      config: { ...config, database: { schema: slipway.services.config.database.schema } },
    });
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    alice = await fixtures.user('alice');
    bob = await fixtures.user('bob');
    await fixtures.organization('acme');
    await fixtures.team('acme', 'builders', 'member', ['alice']);
    robot = await fixtures.robot('acme', 'ci');
  });

  afterAll(async () => {
    await replica?.stop();
    await slipway?.stop();
    await upstream?.stop();
  });

  const pullAs = (login: Login | undefined, path = '/v2/corp/root/app/manifests/1', on = slipway) =>
    new OciClient(on.url, login ? { Authorization: basicOf(login) } : {}).fetch(path);

  it('adds an upstream with credentials that are stored sealed and never shown', async () => {
    const created = await root.post<UpstreamBody>('/proxy/upstreams', {
      name: 'corp',
      url: `${upstream.url}/`,
      username: adminUser,
      password: adminPassword,
      freshness: 600,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'corp',
      url: upstream.url,
      username: adminUser,
      hasPassword: true,
      pull: 'users',
      source: 'api',
      freshness: 600,
      circuit: 'closed',
    });
    expect(created.body.password).toBeUndefined();

    const { rows } = await slipway.services.db.query<{ password_sealed: string }>(
      `SELECT password_sealed FROM proxy_upstreams WHERE name = 'corp'`,
    );
    expect(rows[0]!.password_sealed).toMatch(/^v1\./);
    expect(rows[0]!.password_sealed).not.toContain(adminPassword);

    const listed = await ApiCaller.as(slipway, basicOf(bob)).get<{ upstreams: UpstreamBody[] }>(
      '/proxy/upstreams',
    );
    expect(listed.body.upstreams.map((u) => [u.name, u.source])).toEqual([
      ['corp', 'api'],
      ['hub', 'config'],
    ]);
  });

  it('pulls through the new upstream at once, with its credentials, on every replica', async () => {
    const pulled = await pullAs(alice);
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('x-cache')).toBe('MISS');
    expect(pulled.headers.get('docker-content-digest')).toBe(image.digest);

    // The other replica learns of the upstream by itself, and opens its sealed password.
    await waitFor(
      async () =>
        (await pullAs(alice, `/v2/corp/root/app/blobs/${image.configDigest}`, replica)).status === 200,
    );
  });

  it('answers a ping with what the upstream said, and follows a credentials change', async () => {
    const ping = await root.post<PingBody>('/proxy/upstreams/corp/ping');
    expect(ping.body).toMatchObject({ ok: true, auth: 'bearer', problem: null });

    const wrong = await root.patch('/proxy/upstreams/corp', {
      username: adminUser,
      password: 'not-the-password',
    });
    expect(wrong.status).toBe(200);
    const refused = await root.post<PingBody>('/proxy/upstreams/corp/ping');
    expect(refused.body.ok).toBe(false);
    expect(refused.body.problem).toMatch(/401|unauthori[sz]ed|credentials/i);

    await root.patch('/proxy/upstreams/corp', { username: adminUser, password: adminPassword });
    expect((await root.post<PingBody>('/proxy/upstreams/corp/ping')).body.ok).toBe(true);
  });

  it('applies the pull policy: signed-in users, then members of an organization, then anyone', async () => {
    expect((await pullAs(bob)).status).toBe(200);
    expect((await pullAs(undefined)).status).toBe(401);

    await root.patch('/proxy/upstreams/corp', { pull: 'org:acme' });
    expect((await pullAs(alice)).status).toBe(200);
    expect((await pullAs(robot)).status).toBe(200);
    expect((await pullAs(bob)).status).not.toBe(200);

    await root.patch('/proxy/upstreams/corp', { pull: 'anonymous' });
    // As docker does without credentials: an anonymous token, then the pull with it.
    const { body } = await fetchToken(slipway, ['repository:corp/root/app:pull']);
    expect(accessOf(body.token)).toEqual([{ type: 'repository', name: 'corp/root/app', actions: ['pull'] }]);
    const anonymous = new OciClient(slipway.url, { Authorization: `Bearer ${body.token}` });
    expect((await anonymous.fetch('/v2/corp/root/app/manifests/1')).status).toBe(200);
  });

  it('keeps the changes to superusers, and config-declared upstreams to the config file', async () => {
    const asAlice = ApiCaller.as(slipway, basicOf(alice));
    expect((await asAlice.post('/proxy/upstreams', { name: 'mine', url: upstream.url })).status).toBe(403);
    expect((await asAlice.patch('/proxy/upstreams/corp', { freshness: 1 })).status).toBe(403);
    expect((await ApiCaller.as(slipway, undefined).get('/proxy/upstreams')).status).toBe(401);

    const configured = await root.patch('/proxy/upstreams/hub', { freshness: 1 });
    expect(configured.status).toBe(409);
    expect(configured.body.error?.message).toContain('config file');
  });

  it('refuses names that are taken and hosts that are routed already, changing nothing', async () => {
    for (const name of ['alice', 'acme', 'hub', 'corp']) {
      const answer = await root.post('/proxy/upstreams', { name, url: upstream.url });
      expect(answer.status, name).toBe(409);
    }
    await root.patch('/proxy/upstreams/corp', { hosts: ['quay.io'] });
    const taken = await root.post('/proxy/upstreams', {
      name: 'other',
      url: upstream.url,
      hosts: ['Quay.io'],
    });
    expect(taken.status).toBe(409);
    const bad = await root.post('/proxy/upstreams', { name: 'Bad/Name', url: 'ftp://x' });
    expect(bad.status).toBe(400);
    const half = await root.post('/proxy/upstreams', { name: 'half', url: upstream.url, username: 'u' });
    expect(half.status).toBe(400);
    const listed = await root.get<{ upstreams: UpstreamBody[] }>('/proxy/upstreams');
    expect(listed.body.upstreams.map((u) => u.name)).toEqual(['corp', 'hub']);
  });

  it('keeps an upstream added with a storage budget within it, sparing its pinned tags', async () => {
    const pusher = new OciClient(upstream.url, { Authorization: basic(adminUser, adminPassword) });
    await pusher.pushImage('root/app', '2');
    const three = await pusher.pushImage('root/app', '3');
    // Room for the manifests of 1 and 3, not for all three; 1 is pinned, and the least recently pulled.
    const budget = image.size + three.size;
    const created = await root.post<UpstreamBody>('/proxy/upstreams', {
      name: 'small',
      url: upstream.url,
      username: adminUser,
      password: adminPassword,
      storageBudget: `${budget}B`,
      pinned: ['root/app:1'],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      storageBudget: budget,
      pinned: ['root/app:1'],
      staleIfDeleted: false,
    });
    const manifestOf = async (tag: string) => {
      const response = await pullAs(alice, `/v2/small/root/app/manifests/${tag}`);
      await response.arrayBuffer();
      return { status: response.status, cache: response.headers.get('x-cache') };
    };
    for (const tag of ['1', '2', '3']) expect(await manifestOf(tag)).toEqual({ status: 200, cache: 'MISS' });

    const report = await slipway.services.cacheEviction.run();
    const small = report?.upstreams.find((u) => u.upstream === 'small');
    expect(small?.evicted.map((e) => `${e.repository}:${e.tag}`)).toEqual(['small/root/app:2']);
    expect(small?.bytes).toBe(budget);
    expect(await manifestOf('1')).toEqual({ status: 200, cache: 'HIT' });
    expect(await manifestOf('3')).toEqual({ status: 200, cache: 'HIT' });
    expect(await manifestOf('2')).toEqual({ status: 200, cache: 'MISS' });
  });

  it('changes the budget, pins and staleIfDeleted of an upstream, and removes the budget with null', async () => {
    const changed = await root.patch<UpstreamBody>('/proxy/upstreams/small', {
      storageBudget: '50GiB',
      pinned: ['v*', 'root/app:stable'],
      staleIfDeleted: true,
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      storageBudget: 50 * 2 ** 30,
      pinned: ['v*', 'root/app:stable'],
      staleIfDeleted: true,
    });
    const onReplica = ApiCaller.as(replica, basic(adminUser, adminPassword));
    await waitFor(
      async () =>
        (await onReplica.get<UpstreamBody>('/proxy/upstreams/small')).body.storageBudget === 50 * 2 ** 30,
    );

    const cleared = await root.patch<UpstreamBody>('/proxy/upstreams/small', { storageBudget: null });
    expect(cleared.body).toMatchObject({ storageBudget: null, pinned: ['v*', 'root/app:stable'] });
    expect((await root.get<UpstreamBody>('/proxy/upstreams/small')).body.storageBudget).toBeNull();

    const wrong = await root.patch('/proxy/upstreams/small', {
      storageBudget: '5 parsecs',
      pinned: ['a:b:c'],
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error?.message).toMatch(/expected bytes/);
    expect((await root.delete('/proxy/upstreams/small')).status).toBe(204);
  });

  it('removes an upstream, and with purge its cached repositories', async () => {
    const removed = await root.delete('/proxy/upstreams/corp?purge=true');
    expect(removed.status).toBe(204);
    expect((await root.get('/proxy/upstreams/corp')).status).toBe(404);
    const { rows } = await slipway.services.db.query(
      `SELECT name FROM repositories WHERE starts_with(name, 'corp/')`,
    );
    expect(rows).toEqual([]);
    expect((await pullAs(alice)).status).not.toBe(200);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
