import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, fetchToken, startSecuredSlipway } from '../../helpers/auth.ts';
import { basicOf, IdentityFixtures, type Login } from '../../helpers/identity-fixtures.ts';
import { errorCode, OciClient } from '../../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';
import type { MirrorImportResource, MirrorResource } from '../../../src/cli/resources.ts';
import { mirrorSettingsSchema } from '../../../src/mirror/sync/mirror-settings.ts';

const skopeoFile = `
docker.io:
  images:
    nginx: ["1.27", "1.27-alpine"]
    busybox: []
  images-by-semver:
    alpine: ">= 3.19"
quay.io/coreos:
  images-by-tag-regex:
    etcd: ^v3\\.5\\.\\d+$
  credentials:
    username: quay-user
    password: quay-secret
  cert-dir: /etc/containers/certs.d/quay.io
`;

/** Mirror definitions through /api/v1/mirrors, against a gateway with authentication on. */
describe('/api/v1/mirrors', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  let alice: Login;
  let bob: Login;
  let robot: Login;
  let asAlice: ApiCaller;
  let asBob: ApiCaller;

  beforeAll(async () => {
    // PostgreSQL here; the CLI tests run the same routes on PGlite.
    slipway = await startSecuredSlipway({ database: 'postgres' });
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    alice = await fixtures.user('alice');
    bob = await fixtures.user('bob');
    await fixtures.organization('acme');
    await fixtures.team('acme', 'admins', 'admin', ['alice']);
    await fixtures.team('acme', 'devs', 'member', ['bob']);
    await fixtures.organization('other');
    robot = await fixtures.robot('acme', 'mirror');
    await fixtures.robot('other', 'mirror');
    asAlice = ApiCaller.as(slipway, basicOf(alice));
    asBob = ApiCaller.as(slipway, basicOf(bob));
  });

  afterAll(async () => {
    await slipway?.stop();
  });

  const nginx = {
    repository: 'acme/nginx',
    upstream: {
      url: 'https://registry-1.docker.io/v2/',
      repository: 'library/nginx',
      username: 'hub-user',
      password: 'hub-secret-password',
    },
    filter: { include: '1.27.*,stable', exclude: ['*-rc*'] },
    platforms: ['linux/amd64', 'linux/arm64'],
    schedule: { interval: '6h' },
    deleteMissing: true,
    robot: 'mirror',
  };

  it('creates a mirror (and its repository) for a namespace admin; the password is never shown', async () => {
    const created = await asAlice.post<MirrorResource>('/mirrors', nginx);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      repository: 'acme/nginx',
      namespace: 'acme',
      upstream: {
        url: 'https://registry-1.docker.io',
        repository: 'library/nginx',
        username: 'hub-user',
        hasPassword: true,
        tlsVerify: true,
      },
      filter: { include: ['1.27.*', 'stable'], exclude: ['*-rc*'], regex: [], includePrerelease: false },
      platforms: ['linux/amd64', 'linux/arm64'],
      schedule: { interval: 21600 },
      startAt: null,
      enabled: true,
      deleteMissing: true,
      maxDeletions: 20,
      robot: 'acme+mirror',
      concurrency: 4,
      bandwidthLimit: null,
      state: 'never_run',
      lastRunAt: null,
    });
    expect(Date.parse(created.body.nextRunAt!)).toBeLessThanOrEqual(Date.now());
    expect(JSON.stringify(created.body)).not.toContain('hub-secret-password');

    const repository = await asAlice.get('/repositories/acme/nginx');
    expect(repository.status).toBe(200);
    const permissions = await asAlice.get<{ permissions: Array<{ name: string; role: string }> }>(
      '/repositories/acme/nginx/permissions',
    );
    expect(permissions.body.permissions).toContainEqual({
      kind: 'robot',
      name: 'acme+mirror',
      role: 'write',
    });

    const shown = await asAlice.get<MirrorResource>('/mirrors/acme/nginx');
    expect(shown.status).toBe(200);
    expect(shown.body.upstream).not.toHaveProperty('password');
    expect(JSON.stringify(shown.body)).not.toContain('hub-secret-password');
    const listed = await root.get<{ mirrors: MirrorResource[] }>('/mirrors?namespace=acme');
    expect(listed.body.mirrors.map((m) => m.repository)).toEqual(['acme/nginx']);
    expect(JSON.stringify(listed.body)).not.toContain('hub-secret-password');

    const audit = await root.get<{ entries: Array<{ kind: string; metadata: object }> }>(
      '/audit?repository=acme/nginx',
    );
    expect(audit.body.entries.map((entry) => entry.kind)).toEqual(
      expect.arrayContaining(['create_repo', 'create_repo_mirror', 'change_repo_permission']),
    );
    expect(JSON.stringify(audit.body)).not.toContain('hub-secret-password');

    // The sealed password is opened only for a sync.
    const definition = await slipway.services.mirrors.definition('acme/nginx');
    expect(definition?.upstream.credentials).toEqual({
      username: 'hub-user',
      password: 'hub-secret-password',
    });
  });

  it('refuses a second mirror of the same repository', async () => {
    const again = await asAlice.post('/mirrors', nginx);
    expect(again.status).toBe(409);
    expect(again.body.error?.message).toContain('acme/nginx is a mirror already');
  });

  it('answers what is wrong with a bad filter, cron expression, robot or upstream', async () => {
    const cases: Array<[object, string]> = [
      [{ filter: { include: ['!latest'] } }, 'list "latest" under exclude'],
      [{ filter: { semver: 'not a range' } }, 'is not a semver range'],
      [{ filter: { newest: 0 } }, 'whole number of at least 1'],
      [{ filter: { regex: ['(unclosed'] } }, 'is not a valid regular expression'],
      [{ schedule: { cron: '0 3 * *' } }, 'a cron expression has 5'],
      [{ schedule: { cron: '61 3 * * *' } }, 'is not a valid cron expression'],
      [{ schedule: { interval: '6h', cron: '0 3 * * *' } }, 'not both'],
      [{ schedule: { interval: '10s' } }, 'at most once a minute'],
      [{ platforms: ['amd64'] }, 'expected a platform such as "linux/amd64"'],
      [{ robot: 'other+mirror' }, 'belongs to another namespace'],
      [{ robot: 'ghost' }, 'robot acme+ghost does not exist'],
      [{ robot: 'alice' }, 'not a robot account'],
      [{ upstream: { url: 'ftp://example.com', repository: 'x' } }, 'expected the registry origin'],
      [{ upstream: { url: 'https://quay.io', repository: 'a', username: 'u' } }, 'give both username'],
      [{ repository: 'nonamespace' }, 'repository names are <namespace>/<name>'],
    ];
    for (const [change, message] of cases) {
      const answer = await asAlice.post('/mirrors', { ...nginx, repository: 'acme/bad', ...change });
      expect(answer.status, JSON.stringify(change)).toBe(400);
      expect(answer.body.error?.code).toBe('SLW_ERR_INVALID');
      expect(answer.body.error?.message, JSON.stringify(change)).toContain(message);
    }
    expect((await asAlice.get('/mirrors/acme/bad')).status).toBe(404);
    expect((await asAlice.get('/repositories/acme/bad')).status).toBe(404);
  });

  it('hides mirrors from those who do not administer the namespace', async () => {
    expect((await asBob.post('/mirrors', { ...nginx, repository: 'acme/bobs' })).status).toBe(403);
    expect((await asBob.get('/mirrors/acme/nginx')).status).toBe(404);
    expect((await asBob.patch('/mirrors/acme/nginx', { enabled: false })).status).toBe(404);
    expect((await asBob.delete('/mirrors/acme/nginx')).status).toBe(404);
    expect((await asBob.get<{ mirrors: unknown[] }>('/mirrors')).body.mirrors).toEqual([]);
    expect((await asBob.get('/mirrors?namespace=acme')).status).toBe(403);
    expect((await ApiCaller.as(slipway, undefined).get('/mirrors')).status).toBe(401);
  });

  it('changes only what a PATCH gives, and removes credentials with password null', async () => {
    const changed = await asAlice.patch<MirrorResource>('/mirrors/acme/nginx', {
      schedule: { cron: '0 3 * * *' },
      enabled: false,
      maxDeletions: 5,
      bandwidthLimit: '10MiB',
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      schedule: { cron: '0 3 * * *' },
      enabled: false,
      nextRunAt: null,
      maxDeletions: 5,
      bandwidthLimit: 10 * 1024 * 1024,
      deleteMissing: true,
      platforms: ['linux/amd64', 'linux/arm64'],
      upstream: { username: 'hub-user', hasPassword: true },
    });
    const enabled = await asAlice.patch<MirrorResource>('/mirrors/acme/nginx', {
      enabled: true,
      startAt: '2030-01-01T00:00:00Z',
    });
    expect(enabled.body.nextRunAt).toBe('2030-01-01T03:00:00.000Z');
    const anonymous = await asAlice.patch<MirrorResource>('/mirrors/acme/nginx', {
      upstream: { password: null },
    });
    expect(anonymous.body.upstream).toMatchObject({ username: null, hasPassword: false });
    expect((await asAlice.patch('/mirrors/acme/nginx', {})).status).toBe(400);
    const bad = await asAlice.patch('/mirrors/acme/nginx', { filter: { include: ['a/b'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toContain('which no tag has');
  });

  it('imports a skopeo sync file with warnings, all or nothing', async () => {
    const imported = await asAlice.post<MirrorImportResource>('/mirrors/import', {
      namespace: 'acme',
      file: skopeoFile,
      robot: 'acme+mirror',
    });
    expect(imported.status).toBe(201);
    expect(imported.body.mirrors.map((m) => m.repository).sort()).toEqual([
      'acme/coreos/etcd',
      'acme/library/alpine',
      'acme/library/busybox',
      'acme/library/nginx',
    ]);
    const etcd = imported.body.mirrors.find((m) => m.repository === 'acme/coreos/etcd')!;
    expect(etcd).toMatchObject({
      upstream: {
        url: 'https://quay.io',
        repository: 'coreos/etcd',
        username: 'quay-user',
        hasPassword: true,
      },
      filter: { regex: ['^v3\\.5\\.\\d+$'] },
      robot: 'acme+mirror',
      schedule: { interval: 21600 },
    });
    expect(JSON.stringify(imported.body)).not.toContain('quay-secret');
    expect(imported.body.warnings).toEqual([expect.objectContaining({ path: '"quay.io/coreos".cert-dir' })]);

    // A file with one mirror that exists already creates none of the others.
    const overlapping = await asAlice.post('/mirrors/import', {
      namespace: 'acme',
      file: 'docker.io:\n  images:\n    redis: []\n    nginx: ["1.26"]\n',
      robot: 'mirror',
    });
    expect(overlapping.status).toBe(409);
    expect(overlapping.body.error?.message).toContain('acme/library/nginx is a mirror already');
    expect((await asAlice.get('/mirrors/acme/library/redis')).status).toBe(404);
    expect((await asAlice.get('/repositories/acme/library%2Fredis')).status).toBe(404);

    const broken = await asAlice.post('/mirrors/import', {
      namespace: 'acme',
      file: 'docker.io:\n  images:\n    redis: 12\n',
      robot: 'mirror',
    });
    expect(broken.status).toBe(400);
    expect(broken.body.error?.message).toContain('"docker.io".images.redis');
    const otherRobot = await asAlice.post('/mirrors/import', {
      namespace: 'acme',
      file: 'docker.io:\n  images:\n    redis: []\n',
      robot: 'other+mirror',
    });
    expect(otherRobot.status).toBe(400);
    expect(
      (await asBob.post('/mirrors/import', { namespace: 'acme', file: skopeoFile, robot: 'mirror' })).status,
    ).toBe(403);
  });

  it('documents the routes in the OpenAPI document', async () => {
    const document = (await (await fetch(`${slipway.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations).toEqual(
      expect.arrayContaining([
        'GET /api/v1/mirrors',
        'POST /api/v1/mirrors',
        'POST /api/v1/mirrors/import',
        'GET /api/v1/mirrors/{namespace}/{name}',
        'PATCH /api/v1/mirrors/{namespace}/{name}',
        'DELETE /api/v1/mirrors/{namespace}/{name}',
      ]),
    );
    expect(document.components.schemas).toHaveProperty('Mirror');
  });

  describe('a mirrored repository is read-only to all but its robot', () => {
    const image = (login: Login | undefined) =>
      new OciClient(slipway.url, login ? { Authorization: basicOf(login) } : {});

    it('refuses a push by an admin with DENIED and says why', async () => {
      await expect(image(alice).pushImage('acme/nginx', 'by-alice')).rejects.toThrow(
        /DENIED.*acme\/nginx is a mirror of registry-1\.docker\.io\/library\/nginx; only its robot acme\+mirror may write/,
      );
      const root = image({ username: adminUser, password: adminPassword });
      const response = await root.fetch('/v2/acme/nginx/blobs/uploads/', { method: 'POST' });
      expect(response.status).toBe(403);
      expect(await errorCode(response)).toBe('DENIED');
    });

    it('refuses a bearer token holder too, while pulls still work', async () => {
      const token = await fetchToken(slipway, ['repository:acme/nginx:pull,push'], basicOf(alice));
      expect(token.status).toBe(200);
      const withToken = new OciClient(slipway.url, { Authorization: `Bearer ${token.body.token}` });
      const upload = await withToken.fetch('/v2/acme/nginx/blobs/uploads/', { method: 'POST' });
      expect(upload.status).toBe(403);
      expect(await upload.text()).toContain('only its robot acme+mirror may write');
      const tags = await withToken.fetch('/v2/acme/nginx/tags/list');
      expect(tags.status).not.toBe(403);
    });

    it("accepts the robot's push and delete, and refuses others a tag restore through the API", async () => {
      const pushed = await image(robot).pushImage('acme/nginx', '1.27.0');
      const restore = await asAlice.post('/repositories/acme/nginx/tags/1.27.0/restore', {
        digest: pushed.digest,
      });
      expect(restore.status).toBe(403);
      expect(restore.body.error?.message).toContain('only its robot acme+mirror may write');
      const deleted = await image(robot).fetch(`/v2/acme/nginx/manifests/${pushed.digest}`, {
        method: 'DELETE',
      });
      expect(deleted.status).toBe(202);
    });

    it('forgets a mirror whose repository was deleted: a push may create the repository anew', async () => {
      expect((await asAlice.post('/mirrors', { ...nginx, repository: 'acme/scratch' })).status).toBe(201);
      await expect(image(alice).pushImage('acme/scratch', '1')).rejects.toThrow(/DENIED/);
      expect((await asAlice.delete('/repositories/acme/scratch')).status).toBe(204);
      await slipway.services.mirrorGuard.refresh();
      await image(alice).pushImage('acme/scratch', '1');
      expect((await asAlice.get('/mirrors/acme/scratch')).status).toBe(404);
    });

    it('is writable again once the mirror is deleted', async () => {
      const deleted = await asAlice.delete('/mirrors/acme/nginx');
      expect(deleted.status).toBe(204);
      expect((await asAlice.get('/mirrors/acme/nginx')).status).toBe(404);
      await image(alice).pushImage('acme/nginx', 'by-alice');
      const audit = await root.get<{ entries: Array<{ kind: string }> }>(
        '/audit?repository=acme/nginx&kind=delete_repo_mirror',
      );
      expect(audit.body.entries).toHaveLength(1);
    });
  });
});

describe('a mirror with authentication off', () => {
  let slipway: TestSlipway;

  beforeAll(async () => {
    slipway = await startSlipway({ config: { auth: { enabled: false, adminUser, adminPassword } } });
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.robot('acme', 'mirror');
  });

  afterAll(async () => {
    await slipway?.stop();
  });

  it('is read-only to every client: nobody is identified as its robot', async () => {
    const settings = mirrorSettingsSchema.parse({
      upstream: { url: 'https://quay.io', repository: 'coreos/etcd' },
      robot: 'mirror',
    });
    await slipway.services.mirrors.create([{ repository: 'acme/etcd', settings }], null);
    await slipway.services.mirrorGuard.refresh();
    const client = new OciClient(slipway.url);
    await expect(client.pushImage('acme/etcd', 'v3.5.0')).rejects.toThrow(
      /DENIED.*acme\/etcd is a mirror of quay\.io\/coreos\/etcd/,
    );
    await client.pushImage('acme/app', '1');
  });
});
