import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { OciClient } from '../../helpers/oci-client.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

interface RepositoryPage {
  repositories: Array<{ name: string; visibility: string }>;
  next?: string;
}

interface AuditPage {
  entries: Array<{
    id: number;
    kind: string;
    actor: string | null;
    repository: string | null;
    target: string | null;
    ip: string | null;
    metadata: Record<string, unknown>;
  }>;
  next?: number;
}

describe('REST API: repositories, permissions, tags and the audit log', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  const as = (username: string, password: string) => ApiCaller.as(slipway, basic(username, password));
  const registryAs = (username: string, password: string) =>
    new OciClient(slipway.url, { Authorization: basic(username, password) });

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = as(adminUser, adminPassword);
    for (const name of ['alice', 'bob']) await root.post('/users', { name, password: `${name}-password` });
    await root.post('/organizations', { name: 'acme' });
    await root.put('/organizations/acme/teams/devs', { role: 'member' });
    await root.put('/organizations/acme/teams/devs/members/bob');
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  it('creates repositories private by default and lists only what each caller can read', async () => {
    const alice = as('alice', 'alice-password');
    expect((await root.post('/repositories', { name: 'acme/api' })).body).toMatchObject({
      name: 'acme/api',
      namespace: 'acme',
      visibility: 'private',
    });
    await root.post('/repositories', { name: 'acme/web', visibility: 'public' });
    await root.post('/repositories', { name: 'acme/tools/lint' });
    expect((await alice.post('/repositories', { name: 'alice/notes' })).status).toBe(201);

    const refused = await alice.post('/repositories', { name: 'acme/sneaky' });
    expect(refused.status).toBe(403);
    expect(refused.body.error?.message).toMatch(/cannot create repositories in acme/);
    expect((await alice.post('/repositories', { name: 'acme/web' })).status).toBe(409);

    const names = async (caller: ApiCaller, query = '') =>
      (await caller.get<RepositoryPage>(`/repositories${query}`)).body.repositories.map((r) => r.name);
    expect(await names(alice)).toEqual(['acme/web', 'alice/notes']);
    expect(await names(ApiCaller.as(slipway, undefined))).toEqual(['acme/web']);
    expect(await names(root, '?namespace=acme')).toEqual(['acme/api', 'acme/tools/lint', 'acme/web']);
    expect(await names(root, '?public=true')).toEqual(['acme/web']);

    const first = await root.get<RepositoryPage>('/repositories?limit=2');
    expect(first.body.repositories.map((r) => r.name)).toEqual(['acme/api', 'acme/tools/lint']);
    expect(first.body.next).toBe('acme/tools/lint');
    const second = await root.get<RepositoryPage>(`/repositories?limit=2&last=${first.body.next}`);
    expect(second.body.repositories.map((r) => r.name)).toEqual(['acme/web', 'alice/notes']);
    expect(second.body.next).toBeUndefined();

    // A nested name is addressed with its rest URL-encoded; a private one stays hidden from outsiders.
    expect((await root.get('/repositories/acme/tools%2Flint')).body).toMatchObject({ role: 'admin' });
    expect((await alice.get('/repositories/acme/tools%2Flint')).status).toBe(404);
  });

  it('grants and revokes roles to users, teams and robots of the namespace only', async () => {
    const bob = as('bob', 'bob-password');
    expect((await bob.get('/repositories/acme/api')).status).toBe(404);
    expect((await root.put('/repositories/acme/api/permissions/team/devs', { role: 'read' })).status).toBe(
      200,
    );
    expect((await bob.get('/repositories/acme/api')).body).toMatchObject({ role: 'read' });
    expect((await bob.patch('/repositories/acme/api', { visibility: 'public' })).status).toBe(403);

    const ownRobot = await root.put<{ token: string }>('/namespaces/acme/robots/ci');
    await as('alice', 'alice-password').put('/namespaces/alice/robots/bot');
    expect(
      (await root.put('/repositories/acme/api/permissions/robot/acme+ci', { role: 'write' })).status,
    ).toBe(200);
    const foreign = await root.put('/repositories/acme/api/permissions/robot/alice+bot', { role: 'read' });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error?.message).toMatch(/belongs to another namespace/);
    expect((await root.put('/repositories/acme/api/permissions/user/acme+ci', { role: 'read' })).status).toBe(
      400,
    );

    const listed = await root.get<{ permissions: unknown[] }>('/repositories/acme/api/permissions');
    expect(listed.body.permissions).toEqual(
      expect.arrayContaining([
        { kind: 'team', name: 'devs', role: 'read' },
        { kind: 'robot', name: 'acme+ci', role: 'write' },
      ]),
    );
    expect(listed.body.permissions).toHaveLength(2);

    // The robot pushes with its token; revoking its role stops it.
    const robot = registryAs('acme+ci', ownRobot.body.token);
    await robot.pushImage('acme/api', 'v1');
    expect((await root.delete('/repositories/acme/api/permissions/robot/acme+ci')).status).toBe(204);
    await expect(robot.pushImage('acme/api', 'v2')).rejects.toThrow(/40[13]/);
    expect((await root.delete('/repositories/acme/api/permissions/robot/acme+ci')).status).toBe(404);
  });

  it('lists tags with digests, shows each tag’s history and restores an earlier digest', async () => {
    const alice = registryAs('alice', 'alice-password');
    const v1 = await alice.pushImage('alice/notes', 'latest');
    const v2 = await alice.pushImage('alice/notes', 'latest');
    await alice.pushImage('alice/notes', 'stable');
    const api = as('alice', 'alice-password');

    const tags = await api.get<{ tags: Array<{ name: string; digest: string }>; next?: string }>(
      '/repositories/alice/notes/tags?limit=1',
    );
    expect(tags.body.tags.map(({ name, digest }) => ({ name, digest }))).toEqual([
      { name: 'latest', digest: v2.digest },
    ]);
    expect(tags.body.next).toBe('latest');

    const history = await api.get<{
      history: Array<{ digest: string; previousDigest: string | null; actor: string }>;
    }>('/repositories/alice/notes/tags/latest/history');
    expect(
      history.body.history.map(({ digest, previousDigest, actor }) => ({ digest, previousDigest, actor })),
    ).toEqual([
      { digest: v2.digest, previousDigest: v1.digest, actor: 'alice' },
      { digest: v1.digest, previousDigest: null, actor: 'alice' },
    ]);

    expect(
      (
        await as('bob', 'bob-password').post('/repositories/alice/notes/tags/latest/restore', {
          digest: v1.digest,
        })
      ).status,
    ).toBe(404);
    const restored = await api.post('/repositories/alice/notes/tags/latest/restore', { digest: v1.digest });
    expect(restored.status).toBe(200);
    expect(restored.body).toMatchObject({ name: 'latest', digest: v1.digest });
    const manifest = await alice.fetch('/v2/alice/notes/manifests/latest', {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(manifest.headers.get('docker-content-digest')).toBe(v1.digest);

    const unknown = await api.post('/repositories/alice/notes/tags/latest/restore', {
      digest: `sha256:${'0'.repeat(64)}`,
    });
    expect(unknown.status).toBe(404);
    const invalid = await api.post('/repositories/alice/notes/tags/latest/restore', {
      digest: 'sha256:nothex',
    });
    expect(invalid.status).toBe(400);
  });

  it('answers audit queries by kind, repository, actor and time, newest first, in pages', async () => {
    const before = new Date().toISOString();
    await root.patch('/repositories/acme/web', { visibility: 'private' });
    await root.patch('/repositories/acme/web', { visibility: 'public' });
    await root.delete('/repositories/acme/tools%2Flint');
    await slipway.services.auth.audit.flush();

    const changes = await root.get<AuditPage>(
      `/audit?kind=change_repo_visibility,delete_repo&since=${encodeURIComponent(before)}&limit=2`,
    );
    expect(changes.body.entries.map((e) => [e.kind, e.repository, e.metadata.visibility ?? null])).toEqual([
      ['delete_repo', 'acme/tools/lint', null],
      ['change_repo_visibility', 'acme/web', 'public'],
    ]);
    expect(changes.body.entries[0]).toMatchObject({ actor: adminUser, ip: '127.0.0.1' });
    const older = await root.get<AuditPage>(
      `/audit?kind=change_repo_visibility,delete_repo&since=${encodeURIComponent(before)}&limit=2&before=${changes.body.next}`,
    );
    expect(older.body.entries.map((e) => e.metadata.visibility)).toEqual(['private']);
    expect(older.body.next).toBeUndefined();

    const restores = await as('alice', 'alice-password').get<AuditPage>(
      '/audit?repository=alice/notes&kind=restore_tag',
    );
    expect(restores.body.entries).toHaveLength(1);
    expect(restores.body.entries[0]).toMatchObject({ actor: 'alice', target: 'latest' });

    const pushes = await root.get<AuditPage>('/audit?actor=alice&kind=push_repo');
    expect(pushes.body.entries.map((e) => e.repository)).toEqual([
      'alice/notes',
      'alice/notes',
      'alice/notes',
    ]);

    const until = await root.get<AuditPage>(
      `/audit?until=${encodeURIComponent(before)}&kind=change_repo_visibility`,
    );
    expect(until.body.entries).toEqual([]);

    const everything = await as('bob', 'bob-password').get('/audit');
    expect(everything.status).toBe(403);
    expect(everything.body.error?.message).toMatch(/only superusers read the whole audit log/);
    expect((await as('bob', 'bob-password').get('/audit?repository=alice/notes')).status).toBe(404);
  });
});
