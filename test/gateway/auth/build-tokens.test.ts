import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPayload } from '../../../src/events/catalog.ts';
import type { IssuedBuildToken } from '../../../src/identity/build-tokens.ts';
import { mirrorSettingsSchema } from '../../../src/mirror/sync/mirror-settings.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { accessOf, basic, fetchToken, startSecuredSlipway } from '../../helpers/auth.ts';
import { ContainersWorkspace } from '../../helpers/containers.ts';
import { basicOf, IdentityFixtures, type Login } from '../../helpers/identity-fixtures.ts';
import { errorCode, OciClient, type PushedImage } from '../../helpers/oci-client.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

const minutes = (n: number) => new Date(Date.now() + n * 60_000);
const pullPush = (repository: string) => `repository:${repository}:pull,push`;

/** The claims of a registry token (read without verifying: the test checks what was issued). */
function claimsOf(token: string): { sub: string; exp: number; account_kind?: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as never;
}

describe('build tokens', () => {
  let slipway: TestSlipway;
  let fixtures: IdentityFixtures;
  let alice: Login;
  let base: PushedImage;

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    fixtures = await IdentityFixtures.of(slipway);
    alice = await fixtures.user('alice');
    await fixtures.organization('acme');
    await fixtures.team('acme', 'devs', 'admin', ['alice']);
    base = await new OciClient(slipway.url, { Authorization: basicOf(alice) }).pushImage('acme/base', '1');
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  const buildTokens = () => slipway.services.auth.buildTokens;
  const loginOf = (issued: IssuedBuildToken): Login => ({
    username: issued.username,
    password: issued.token,
  });
  /** A client that does what docker does: ask /v2/auth for the scopes, then send the token. */
  const tokenFlowClient = async (login: Login, repository: string) => {
    const { status, body } = await fetchToken(slipway, [pullPush(repository)], basicOf(login));
    expect(status).toBe(200);
    return new OciClient(slipway.url, { Authorization: `Bearer ${body.token}` });
  };

  it('pushes and pulls its repository through the token flow, as build@<id>', async () => {
    const issued = await buildTokens().issueBuildToken({
      buildId: 'push-1',
      repository: 'acme/app',
      expiresAt: minutes(10),
      issuedBy: 'alice',
    });
    expect(issued.username).toBe('build@push-1');
    expect(issued.token).toMatch(/^slw_/);

    const client = await tokenFlowClient(loginOf(issued), 'acme/app');
    const pushed = await client.pushImage('acme/app', '1');
    const pulled = await client.fetch('/v2/acme/app/manifests/1');
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('docker-content-digest')).toBe(pushed.digest);

    const { rows } = await slipway.services.db.query<{ payload: EventPayload }>(
      `SELECT payload FROM events WHERE repository = 'acme/app' AND kind = 'repo_push'`,
    );
    expect(rows.map((row) => row.payload)).toMatchObject([{ pusher: 'build@push-1' }]);
    await slipway.services.auth.audit.flush();
    const { entries } = await slipway.services.auth.audit.query({ repository: 'acme/app', limit: 50 });
    const byKind = (kind: string) => entries.find((entry) => entry.kind === kind);
    expect(byKind('issue_build_token')).toMatchObject({ actor: 'alice', target: 'build@push-1' });
    expect(byKind('create_repo')).toMatchObject({ actor: 'build@push-1', actorKind: 'build' });
    expect(byKind('push_repo')).toMatchObject({ actor: 'build@push-1', actorKind: 'build' });
  });

  it('gets a registry token holding pull and push on its repository only, never delete or the catalog', async () => {
    const issued = await buildTokens().issueBuildToken({
      buildId: 'scopes-1',
      repository: 'acme/app',
      expiresAt: minutes(10),
    });
    const { status, body } = await fetchToken(
      slipway,
      [
        'repository:acme/app:pull,push,delete',
        'repository:acme/base:pull,push',
        'repository:acme/base:pull',
        'repository:alice/anything:pull,push',
        'registry:catalog:*',
      ],
      basicOf(loginOf(issued)),
    );
    expect(status).toBe(200);
    expect(accessOf(body.token)).toEqual([
      { type: 'repository', name: 'acme/app', actions: ['pull', 'push'] },
    ]);
    expect(claimsOf(body.token)).toMatchObject({ sub: 'build@scopes-1', account_kind: 'build' });

    const everything = await fetchToken(slipway, ['repository:acme/app:*'], basicOf(loginOf(issued)));
    expect(accessOf(everything.body.token)).toEqual([
      { type: 'repository', name: 'acme/app', actions: ['pull', 'push'] },
    ]);
  });

  it('never gets a registry token that outlives the build token', async () => {
    const expiresAt = new Date(Date.now() + 90_000);
    const issued = await buildTokens().issueBuildToken({
      buildId: 'short-1',
      repository: 'acme/app',
      expiresAt,
    });
    const { body } = await fetchToken(slipway, [pullPush('acme/app')], basicOf(loginOf(issued)));
    expect(claimsOf(body.token).exp).toBeLessThanOrEqual(Math.floor(expiresAt.getTime() / 1000));
    expect(body.expires_in).toBeLessThanOrEqual(90);
    expect(body.expires_in).toBeGreaterThan(80);
  });

  it('is refused other repositories and deletes, with Basic credentials or a registry token', async () => {
    const login = loginOf(
      await buildTokens().issueBuildToken({
        buildId: 'deny-1',
        repository: 'acme/app',
        expiresAt: minutes(10),
      }),
    );
    const direct = new OciClient(slipway.url, { Authorization: basicOf(login) });
    const pushed = await direct.pushImage('acme/app', 'direct');

    const elsewhere = await direct.fetch('/v2/acme/base/blobs/uploads/', { method: 'POST' });
    expect(elsewhere.status).toBe(403);
    expect(await errorCode(elsewhere)).toBe('DENIED');
    expect(await direct.status('/v2/acme/base/manifests/1')).toBe(403);
    const deleted = await direct.fetch(`/v2/acme/app/manifests/${pushed.digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(403);
    expect(await errorCode(deleted)).toBe('DENIED');

    const bearer = await tokenFlowClient(login, 'acme/app');
    expect(await bearer.status(`/v2/acme/app/manifests/${pushed.digest}`, { method: 'DELETE' })).toBe(401);
    expect(await bearer.status('/v2/acme/base/manifests/1')).toBe(401);
    for (const from of ['&from=acme/base', '']) {
      const mount = await bearer.fetch(`/v2/acme/app/blobs/uploads/?mount=${base.configDigest}${from}`, {
        method: 'POST',
      });
      expect(mount.status, `mount${from}`).toBe(202); // not mounted: an upload starts instead
    }
    expect(await direct.status('/v2/_catalog')).toBe(200);
    const catalog = (await (await direct.fetch('/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['acme/app']);
  });

  it('pulls public repositories for its base images, and nothing else there', async () => {
    await new OciClient(slipway.url, { Authorization: basicOf(alice) }).pushImage('acme/public-base', '1');
    await fixtures.setVisibility('acme/public-base', 'public');
    const login = loginOf(
      await buildTokens().issueBuildToken({
        buildId: 'base-1',
        repository: 'acme/app',
        expiresAt: minutes(10),
      }),
    );
    const direct = new OciClient(slipway.url, { Authorization: basicOf(login) });
    expect(await direct.status('/v2/acme/public-base/manifests/1')).toBe(200);
    expect(await direct.status('/v2/acme/base/manifests/1')).toBe(403);
    const upload = await direct.fetch('/v2/acme/public-base/blobs/uploads/', { method: 'POST' });
    expect(upload.status).toBe(403);
    const { body } = await fetchToken(
      slipway,
      [pullPush('acme/public-base'), pullPush('acme/base')],
      basicOf(login),
    );
    expect(accessOf(body.token)).toEqual([
      { type: 'repository', name: 'acme/public-base', actions: ['pull'] },
    ]);
  });

  it('is refused at once after revocation: Basic credentials and registry tokens issued before', async () => {
    const login = loginOf(
      await buildTokens().issueBuildToken({
        buildId: 'revoke-1',
        repository: 'acme/app',
        expiresAt: minutes(10),
      }),
    );
    const direct = new OciClient(slipway.url, { Authorization: basicOf(login) });
    const bearer = await tokenFlowClient(login, 'acme/app');
    expect(await direct.status('/v2/acme/app/tags/list')).toBe(200);
    expect(await bearer.status('/v2/acme/app/tags/list')).toBe(200);

    expect(await buildTokens().revokeBuildToken('revoke-1')).toBe(true);

    expect(await direct.status('/v2/acme/app/tags/list')).toBe(401);
    const stale = await bearer.fetch('/v2/acme/app/tags/list');
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await fetchToken(slipway, [pullPush('acme/app')], basicOf(login))).status).toBe(401);
    expect(await buildTokens().revokeBuildToken('revoke-1')).toBe(false);
  });

  it('is refused at once after it expires', async () => {
    const issued = await buildTokens().issueBuildToken({
      buildId: 'expire-1',
      repository: 'acme/app',
      expiresAt: new Date(Date.now() + 2_000),
    });
    const direct = new OciClient(slipway.url, { Authorization: basicOf(loginOf(issued)) });
    const bearer = await tokenFlowClient(loginOf(issued), 'acme/app');
    expect(await direct.status('/v2/acme/app/tags/list')).toBe(200);

    await new Promise((resolve) => setTimeout(resolve, issued.expiresAt.getTime() - Date.now() + 50));

    expect(await direct.status('/v2/acme/app/tags/list')).toBe(401);
    expect(await bearer.status('/v2/acme/app/tags/list')).toBe(401);
    expect((await fetchToken(slipway, [pullPush('acme/app')], basicOf(loginOf(issued)))).status).toBe(401);
    expect(await buildTokens().pruneExpired()).toBeGreaterThanOrEqual(1);
    expect(await buildTokens().revokeBuildToken('expire-1')).toBe(false);
  });

  it('works with the $token username, and with no other name', async () => {
    const issued = await buildTokens().issueBuildToken({
      buildId: 'names-1',
      repository: 'acme/app',
      expiresAt: minutes(10),
    });
    const as = (username: string) =>
      new OciClient(slipway.url, { Authorization: basic(username, issued.token) }).status(
        '/v2/acme/app/tags/list',
      );
    expect(await as('$token')).toBe(200);
    expect(await as('alice')).toBe(401);
    expect(await as('build@other')).toBe(401);
  });

  it('is refused by the REST API, with Basic credentials and as a Bearer token', async () => {
    const issued = await buildTokens().issueBuildToken({
      buildId: 'api-1',
      repository: 'acme/app',
      expiresAt: minutes(10),
    });
    for (const authorization of [basicOf(loginOf(issued)), `Bearer ${issued.token}`]) {
      const user = await ApiCaller.as(slipway, authorization).get('/user');
      expect(user.status).toBe(403);
      expect(user.body.error?.message).toContain('only with the registry');
      expect((await ApiCaller.as(slipway, authorization).get('/repositories/acme/app')).status).toBe(403);
    }
  });

  it('is refused writes to a mirrored repository, like everyone but its robot', async () => {
    await fixtures.robot('acme', 'mirror');
    const settings = mirrorSettingsSchema.parse({
      upstream: { url: 'https://quay.io', repository: 'coreos/etcd' },
      robot: 'mirror',
    });
    await slipway.services.mirrors.create([{ repository: 'acme/etcd', settings }], null);
    await slipway.services.mirrorGuard.refresh();
    const login = loginOf(
      await buildTokens().issueBuildToken({
        buildId: 'mirror-1',
        repository: 'acme/etcd',
        expiresAt: minutes(10),
      }),
    );
    await expect(
      new OciClient(slipway.url, { Authorization: basicOf(login) }).pushImage('acme/etcd', '1'),
    ).rejects.toThrow(/DENIED.*acme\/etcd is a mirror of quay\.io\/coreos\/etcd/);
    const bearer = await tokenFlowClient(login, 'acme/etcd');
    const upload = await bearer.fetch('/v2/acme/etcd/blobs/uploads/', { method: 'POST' });
    expect(upload.status).toBe(403);
    expect(await errorCode(upload)).toBe('DENIED');
  });

  it('works as skopeo --src-creds and --dest-creds, which fetch registry tokens themselves', async () => {
    const workspace = await ContainersWorkspace.create('slipway-build-token-');
    try {
      const issued = await buildTokens().issueBuildToken({
        buildId: 'skopeo-1',
        repository: 'acme/app',
        expiresAt: minutes(10),
      });
      const creds = `${issued.username}:${issued.token}`;
      const at = (reference: string) => `docker://${slipway.host}/${reference}`;
      const layout = `oci:${workspace.path('layouts', 'app')}:1`;
      const copy = ['copy', '--src-tls-verify=false', '--dest-tls-verify=false'];
      await new OciClient(slipway.url, { Authorization: basicOf(loginOf(issued)) }).pushImage(
        'acme/app',
        'for-skopeo',
      );
      await workspace.skopeo([...copy, '--src-creds', creds, at('acme/app:for-skopeo'), layout]);
      await workspace.skopeo([...copy, '--dest-creds', creds, layout, at('acme/app:from-skopeo')]);
      const pulled = await new OciClient(slipway.url, { Authorization: basicOf(alice) }).fetch(
        '/v2/acme/app/manifests/from-skopeo',
      );
      expect(pulled.status).toBe(200);

      const refused = await workspace.skopeoRaw([...copy, '--dest-creds', creds, layout, at('acme/base:2')]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/unauthorized|denied|authentication required/i);
    } finally {
      await workspace.remove();
    }
  });

  it('replaces the token of a build issued again: the previous one is refused from then on', async () => {
    const request = { buildId: 'again-1', repository: 'acme/app', expiresAt: minutes(10) };
    const first = loginOf(await buildTokens().issueBuildToken(request));
    const second = loginOf(await buildTokens().issueBuildToken(request));
    expect(second.username).toBe(first.username);
    const status = (login: Login) =>
      new OciClient(slipway.url, { Authorization: basicOf(login) }).status('/v2/acme/app/tags/list');
    expect(await status(first)).toBe(401);
    expect(await status(second)).toBe(200);
  });

  it('refuses to issue a token for a bad build id, repository or expiry', async () => {
    const issue = (change: Partial<Parameters<ReturnType<typeof buildTokens>['issueBuildToken']>[0]>) =>
      buildTokens().issueBuildToken({
        buildId: 'checks-1',
        repository: 'acme/checks',
        expiresAt: minutes(10),
        ...change,
      });
    await expect(issue({ buildId: 'a:b' })).rejects.toThrow(/not a build id/);
    await expect(issue({ buildId: '' })).rejects.toThrow(/not a build id/);
    await expect(issue({ repository: 'checks' })).rejects.toThrow(/<namespace>\/<name>/);
    await expect(issue({ repository: 'Acme/App' })).rejects.toThrow(/invalid repository name/);
    await expect(issue({ repository: 'nobody/app' })).rejects.toThrow(/namespace nobody does not exist/);
    await expect(issue({ expiresAt: new Date(Date.now() - 1000) })).rejects.toThrow(/in the future/);
    await expect(issue({ expiresAt: minutes(25 * 60) })).rejects.toThrow(/at most 24 hours/);
    await expect(issue({ issuedBy: 'ghost' })).rejects.toThrow(/account ghost does not exist/);
    await issue({});
  });
});
