import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, fetchToken, startSecuredSlipway } from '../../helpers/auth.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

interface Issued {
  id: number;
  token: string;
  expiresAt: string | null;
}

describe('REST API: accounts, organizations, teams, robots, tokens and sessions', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  const as = (username: string, password: string) => ApiCaller.as(slipway, basic(username, password));

  beforeAll(async () => {
    slipway = await startSecuredSlipway({
      config: { auth: { loginThrottle: { freeFailures: 3, baseDelay: 30, maxDelay: 60 } } },
    });
    root = as(adminUser, adminPassword);
    for (const name of ['alice', 'bob', 'carol']) {
      expect((await root.post('/users', { name, password: `${name}-password` })).status).toBe(201);
    }
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  it('lets only superusers manage users, and users change their own password', async () => {
    const alice = as('alice', 'alice-password');
    const listed = await root.get<{ users: Array<{ name: string; superuser: boolean }> }>('/users');
    expect(listed.body.users.map((user) => user.name)).toEqual(['alice', 'bob', 'carol', adminUser]);

    const refused = await alice.post('/users', { name: 'mallory', password: 'mallory-password' });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual({ code: 'SLW_ERR_FORBIDDEN', message: 'only superusers can do this' });
    expect((await alice.get('/users/bob')).status).toBe(403);
    expect((await alice.patch('/users/alice', { superuser: true })).status).toBe(403);

    expect((await alice.patch('/users/alice', { password: 'alice-new-password' })).status).toBe(200);
    expect((await alice.get('/user')).status).toBe(401);
    const renewed = await as('alice', 'alice-new-password').get<{ name: string }>('/user');
    expect(renewed.body.name).toBe('alice');

    const short = await root.post('/users', { name: 'dave', password: 'short' });
    expect(short.status).toBe(400);
    expect(short.body.error?.message).toMatch(/at least 8 characters/);
    expect((await root.get('/users/dave')).status).toBe(404);
  });

  it('runs organizations through their admin teams and keeps the last administrator', async () => {
    const bob = as('bob', 'bob-password');
    const carol = as('carol', 'carol-password');
    expect((await bob.post('/organizations', { name: 'globex' })).status).toBe(201);
    expect((await bob.put('/organizations/globex/teams/builders', { role: 'creator' })).body).toEqual({
      name: 'builders',
      role: 'creator',
      description: '',
    });
    expect((await bob.put('/organizations/globex/teams/builders/members/carol')).status).toBe(204);

    const teams = await carol.get<{ teams: Array<{ name: string; role: string; members: number }> }>(
      '/organizations/globex/teams',
    );
    expect(teams.body.teams.map(({ name, role, members }) => ({ name, role, members }))).toEqual([
      { name: 'builders', role: 'creator', members: 1 },
      { name: 'owners', role: 'admin', members: 1 },
    ]);
    expect((await carol.put('/organizations/globex/teams/rogue', { role: 'admin' })).status).toBe(403);
    // Outsiders do not learn that the organization exists.
    const outsider = await as('alice', 'alice-new-password').get('/organizations/globex');
    expect(outsider.status).toBe(404);

    const lastAdmin = await bob.delete('/organizations/globex/teams/owners/members/bob');
    expect(lastAdmin.status).toBe(409);
    expect(lastAdmin.body.error?.message).toMatch(/last administrator/);
    const members = await bob.get<{ members: unknown[] }>('/organizations/globex/teams/owners/members');
    expect(members.body.members).toEqual([{ name: 'bob', kind: 'user' }]);
  });

  it('creates robots whose token works at once and stops working when regenerated', async () => {
    const bob = as('bob', 'bob-password');
    const created = await bob.put<{ name: string; kind: string; token: string }>(
      '/namespaces/globex/robots/deployer',
      { description: 'deploys' },
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'globex+deployer', kind: 'robot', description: 'deploys' });
    const first = created.body.token;
    expect((await fetchToken(slipway, [], basic('globex+deployer', first))).status).toBe(200);

    const regenerated = await bob.post<{ name: string; token: string }>(
      '/namespaces/globex/robots/deployer/regenerate',
    );
    expect(regenerated.body.name).toBe('globex+deployer');
    expect(regenerated.body.token).not.toBe(first);
    expect((await fetchToken(slipway, [], basic('globex+deployer', first))).status).toBe(401);
    expect((await fetchToken(slipway, [], basic('globex+deployer', regenerated.body.token))).status).toBe(
      200,
    );

    // A robot's token reads the API as the robot, but a robot cannot make tokens of its own.
    const robot = ApiCaller.as(slipway, `Bearer ${regenerated.body.token}`);
    expect((await robot.get<{ name: string }>('/user')).body.name).toBe('globex+deployer');
    expect((await robot.post('/user/tokens', { name: 'escape' })).status).toBe(403);

    expect((await as('carol', 'carol-password').get('/namespaces/globex/robots')).status).toBe(403);
    const robots = await bob.get<{ robots: Array<{ name: string }> }>('/namespaces/globex/robots');
    expect(robots.body.robots.map((r) => r.name)).toEqual(['globex+deployer']);
    expect((await bob.delete('/namespaces/globex/robots/deployer')).status).toBe(204);
    expect((await fetchToken(slipway, [], basic('globex+deployer', regenerated.body.token))).status).toBe(
      401,
    );
  });

  it('issues personal tokens with expiry, lists them without secrets and revokes them', async () => {
    const carol = as('carol', 'carol-password');
    const issued = await carol.post<Issued>('/user/tokens', { name: 'laptop', expiresInDays: 30 });
    expect(issued.status).toBe(201);
    expect(issued.body.token).toMatch(/^slw_/);
    const days = (Date.parse(issued.body.expiresAt!) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);

    const withToken = ApiCaller.as(slipway, `Bearer ${issued.body.token}`);
    expect((await withToken.get<{ name: string }>('/user')).body.name).toBe('carol');
    const listed = await withToken.get<{ tokens: Array<Record<string, unknown>> }>('/user/tokens');
    expect(listed.body.tokens).toHaveLength(1);
    expect(listed.body.tokens[0]).toMatchObject({ id: issued.body.id, name: 'laptop', kind: 'personal' });
    expect(JSON.stringify(listed.body)).not.toContain(issued.body.token);

    // Someone else's token id is not found, and the token keeps working.
    expect((await as('bob', 'bob-password').delete(`/user/tokens/${issued.body.id}`)).status).toBe(404);
    expect((await withToken.get('/user')).status).toBe(200);
    expect((await carol.delete(`/user/tokens/${issued.body.id}`)).status).toBe(204);
    const revoked = await withToken.get('/user');
    expect(revoked.status).toBe(401);
    expect(revoked.body.error?.code).toBe('SLW_ERR_UNAUTHENTICATED');
  });

  it('signs in with a password to an HttpOnly same-site session cookie that sign-out ends', async () => {
    const signIn = await ApiCaller.as(slipway, undefined).post<{ user: { name: string }; expiresAt: string }>(
      '/session',
      { username: 'carol', password: 'carol-password' },
    );
    expect(signIn.status).toBe(200);
    expect(signIn.body.user.name).toBe('carol');
    const setCookie = signIn.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^slipway_session=slw_[^;]+;/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    const cookie = setCookie.split(';')[0]!;

    const session = new ApiCaller(slipway, { Cookie: cookie });
    expect((await session.get<{ name: string }>('/user')).body.name).toBe('carol');
    const tokens = await session.get<{ tokens: Array<{ kind: string }> }>('/user/tokens');
    expect(tokens.body.tokens.map((token) => token.kind)).toContain('session');

    const crossSite = new ApiCaller(slipway, { Cookie: cookie, Origin: 'https://evil.example' });
    const refused = await crossSite.post('/organizations', { name: 'evilcorp' });
    expect(refused.status).toBe(403);
    expect((await root.get('/organizations/evilcorp')).status).toBe(404);

    expect((await session.delete('/session')).status).toBe(204);
    expect((await session.get('/user')).status).toBe(401);

    const wrong = await ApiCaller.as(slipway, undefined).post('/session', {
      username: 'carol',
      password: 'not-her-password',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
  });

  it('throttles repeated failed logins with 429 and Retry-After, even for the right password', async () => {
    expect((await root.post('/users', { name: 'erin', password: 'erin-password' })).status).toBe(201);
    const guess = (password: string) => as('erin', password).get('/user');
    for (let attempt = 0; attempt < 3; attempt++) expect((await guess(`guess-${attempt}`)).status).toBe(401);
    const throttled = await guess('guess-4');
    expect(throttled.status).toBe(429);
    expect(throttled.body.error?.code).toBe('SLW_ERR_THROTTLED');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await guess('erin-password')).status).toBe(429);
    // Another user is not held up by erin's attacker.
    expect((await as('carol', 'carol-password').get('/user')).status).toBe(200);
  });
});
