import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResource, IssuedTriggerResource, TriggerResource } from '../../../src/cli/resources.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { basicOf, IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

/**
 * The pull robot of build triggers and manual builds through /api/v1: only administrators of the robot's
 * namespace may name it, so a repository admin cannot borrow another namespace's robot.
 */
describe('/api/v1 pull robots', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  let asAlice: ApiCaller;
  let asCarl: ApiCaller;

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    for (const organization of ['acme', 'globex']) await fixtures.organization(organization);
    const alice = await fixtures.user('alice');
    const carl = await fixtures.user('carl');
    await fixtures.user('bob');
    // alice administers acme; carl administers the repository acme/app only.
    await fixtures.team('acme', 'admins', 'admin', ['alice']);
    await fixtures.repository('acme/app');
    await fixtures.grant('acme/app', { user: 'carl' }, 'admin');
    await fixtures.robot('acme', 'builder');
    await fixtures.robot('globex', 'ci');
    await fixtures.robot('bob', 'ci');
    asAlice = ApiCaller.as(slipway, basicOf(alice));
    asCarl = ApiCaller.as(slipway, basicOf(carl));
  });

  afterAll(async () => {
    await slipway?.stop();
  });

  const trigger = (pullRobot?: string | null) => ({
    provider: 'custom',
    cloneUrl: 'https://git.example.com/acme/app.git',
    ...(pullRobot !== undefined ? { pullRobot } : {}),
  });
  const createAs = (caller: ApiCaller, pullRobot?: string | null) =>
    caller.post<IssuedTriggerResource>('/repositories/acme/app/triggers', trigger(pullRobot));

  it('sets a robot of a namespace the caller administers, on create and update, and shows it', async () => {
    const created = await createAs(asAlice, 'acme+builder');
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.pullRobot).toBe('acme+builder');
    const { id } = created.body;
    expect((await asAlice.get<TriggerResource>(`/triggers/${id}`)).body.pullRobot).toBe('acme+builder');

    const cleared = await asAlice.patch<TriggerResource>(`/triggers/${id}`, { pullRobot: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.pullRobot).toBeNull();
    const set = await asAlice.patch<TriggerResource>(`/triggers/${id}`, { pullRobot: 'acme+builder' });
    expect(set.body.pullRobot).toBe('acme+builder');

    expect((await createAs(asAlice)).body.pullRobot).toBeNull();

    const audit = await root.get<{ entries: Array<{ target: string; metadata: Record<string, unknown> }> }>(
      '/audit?repository=acme/app&kind=change_repo_trigger',
    );
    expect(audit.body.entries.map((entry) => entry.metadata.pullRobot)).toEqual(
      expect.arrayContaining(['acme+builder', null]),
    );
  });

  it('refuses a robot of a namespace the caller does not administer, with 403, and changes nothing', async () => {
    for (const robot of ['globex+ci', 'bob+ci', 'nowhere+ci']) {
      const refused = await createAs(asAlice, robot);
      expect(refused.status, robot).toBe(403);
      expect(refused.body.error?.message).toContain(robot);
      expect(refused.body.error?.message).toMatch(/only administrators of \S+ may/);
    }
    // A repository admin who does not administer acme may not lend its robot's access either.
    const borrowed = await createAs(asCarl, 'acme+builder');
    expect(borrowed.status).toBe(403);
    expect(borrowed.body.error?.message).toContain('acme+builder');

    const own = await createAs(asCarl);
    expect(own.status).toBe(201);
    const patched = await asCarl.patch(`/triggers/${own.body.id}`, { pullRobot: 'acme+builder' });
    expect(patched.status).toBe(403);
    expect((await asCarl.get<TriggerResource>(`/triggers/${own.body.id}`)).body.pullRobot).toBeNull();
    // Taking a pull robot away needs no more than administering the repository.
    const withRobot = await createAs(asAlice, 'acme+builder');
    const removed = await asCarl.patch<TriggerResource>(`/triggers/${withRobot.body.id}`, {
      pullRobot: null,
    });
    expect(removed.status).toBe(200);
    expect(removed.body.pullRobot).toBeNull();

    const triggers = await root.get<{ triggers: TriggerResource[] }>('/repositories/acme/app/triggers');
    expect(triggers.body.triggers.map((each) => each.pullRobot)).not.toContain('globex+ci');
  });

  it('answers an unknown robot with 404, and a name that is no robot with 400', async () => {
    const unknown = await createAs(asAlice, 'acme+nobody');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.message).toBe('robot account acme+nobody does not exist');
    const superuser = await createAs(root, 'nowhere+ci');
    expect(superuser.status).toBe(404);

    for (const name of ['alice', 'acme+', 'acme+Bad-Name']) {
      const invalid = await createAs(asAlice, name);
      expect(invalid.status, name).toBe(400);
      expect(invalid.body.error?.message).toContain('<namespace>+<name>');
    }
  });

  it("gives manual builds the trigger's pull robot, or one the caller administers", async () => {
    const { body: withRobot } = await createAs(asAlice, 'acme+builder');
    const inherited = await asCarl.post<BuildResource>('/repositories/acme/app/builds', {
      triggerId: withRobot.id,
      ref: 'main',
    });
    expect(inherited.status, JSON.stringify(inherited.body)).toBe(202);
    expect(inherited.body.pullRobot).toBe('acme+builder');

    const without = await asCarl.post<BuildResource>('/repositories/acme/app/builds', {
      triggerId: withRobot.id,
      ref: 'develop',
      pullRobot: null,
    });
    expect(without.body.pullRobot).toBeNull();

    const borrowed = await asCarl.post('/repositories/acme/app/builds', {
      cloneUrl: 'https://git.example.com/acme/app.git',
      ref: 'main',
      pullRobot: 'acme+builder',
    });
    expect(borrowed.status).toBe(403);
    const given = await asAlice.post<BuildResource>('/repositories/acme/app/builds', {
      cloneUrl: 'https://git.example.com/acme/app.git',
      ref: 'feature',
      pullRobot: 'acme+builder',
    });
    expect(given.status).toBe(202);
    expect((await asAlice.get<BuildResource>(`/builds/${given.body.id}`)).body.pullRobot).toBe(
      'acme+builder',
    );
  });

  it('forgets the robot on every trigger when it is deleted', async () => {
    const robot = await root.put('/namespaces/acme/robots/shortlived', {});
    expect(robot.status).toBe(201);
    const { body: created } = await createAs(asAlice, 'acme+shortlived');
    expect(created.pullRobot).toBe('acme+shortlived');
    expect((await asAlice.delete('/namespaces/acme/robots/shortlived')).status).toBe(204);
    expect((await asAlice.get<TriggerResource>(`/triggers/${created.id}`)).body.pullRobot).toBeNull();
  });
});
