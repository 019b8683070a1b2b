import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/identity/accounts.ts';
import { OciClient } from '../../helpers/oci-client.ts';
import {
  accessOf,
  adminPassword,
  adminUser,
  basic,
  fetchToken,
  signIn,
  startSecuredSlipway,
} from '../../helpers/auth.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

describe('registry token authentication', () => {
  let slipway: TestSlipway;
  let root: Principal;
  const alicePassword = 'alice-password';
  const bobPassword = 'bob-password-1';

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = await signIn(slipway, adminUser, adminPassword);
    const { identity } = slipway.services.auth;
    await identity.createUser(root, { name: 'alice', password: alicePassword });
    await identity.createUser(root, { name: 'bob', password: bobPassword });
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  it('challenges a request without credentials with the realm, service and scope it needs', async () => {
    const base = await fetch(`${slipway.url}/v2/`);
    expect(base.status).toBe(401);
    expect(base.headers.get('www-authenticate')).toBe(
      `Bearer realm="${slipway.url}/v2/auth",service="slipway"`,
    );

    const manifest = await fetch(`${slipway.url}/v2/alice/app/manifests/latest`);
    expect(manifest.status).toBe(401);
    expect(manifest.headers.get('www-authenticate')).toBe(
      `Bearer realm="${slipway.url}/v2/auth",service="slipway",scope="repository:alice/app:pull"`,
    );
    expect(((await manifest.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe(
      'UNAUTHORIZED',
    );
  });

  it('issues a token that holds only what the caller may do, and the token pushes and pulls', async () => {
    const { status, body } = await fetchToken(
      slipway,
      ['repository:alice/app:pull,push', 'repository:bob/app:pull,push'],
      basic('alice', alicePassword),
    );
    expect(status).toBe(200);
    expect(body.expires_in).toBe(300);
    expect(accessOf(body.token)).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] },
    ]);

    const client = new OciClient(slipway.url, { Authorization: `Bearer ${body.token}` });
    const pushed = await client.pushImage('alice/app', 'v1');
    const pulled = await client.fetch('/v2/alice/app/manifests/v1');
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('docker-content-digest')).toBe(pushed.digest);

    // The same token on another repository is refused with a challenge for that repository's scope.
    const elsewhere = await client.fetch('/v2/bob/app/tags/list');
    expect(elsewhere.status).toBe(401);
    expect(elsewhere.headers.get('www-authenticate')).toContain(
      'scope="repository:bob/app:pull",error="insufficient_scope"',
    );
  });

  it('mounts a blob named only by digest from repositories the caller can read, never from others', async () => {
    const alice = new OciClient(slipway.url, { Authorization: basic('alice', alicePassword) });
    const bob = new OciClient(slipway.url, { Authorization: basic('bob', bobPassword) });
    const secret = await alice.pushBlob('alice/vault', Buffer.from('alice private layer'));
    const mount = (client: OciClient, repository: string) =>
      client.fetch(`/v2/${repository}/blobs/uploads/?mount=${secret}`, { method: 'POST' });

    // Bob's mount is not refused outright (that would confirm the blob exists): he is asked to upload it.
    const refused = await mount(bob, 'bob/loot');
    expect(refused.status).toBe(202);
    expect((await bob.fetch(`/v2/bob/loot/blobs/${secret}`, { method: 'HEAD' })).status).toBe(404);

    const own = await mount(alice, 'alice/copy');
    expect(own.status).toBe(201);
    expect((await alice.fetch(`/v2/alice/copy/blobs/${secret}`)).status).toBe(200);
  });

  it('answers a pull of a private repository by an outsider with an empty grant, and refuses the request', async () => {
    const { body } = await fetchToken(slipway, ['repository:alice/app:pull'], basic('bob', bobPassword));
    expect(accessOf(body.token)).toEqual([]);
    const anonymous = await fetchToken(slipway, ['repository:alice/app:pull']);
    expect(anonymous.status).toBe(200);
    expect(accessOf(anonymous.body.token)).toEqual([]);
    const refused = await fetch(`${slipway.url}/v2/alice/app/tags/list`, {
      headers: { Authorization: `Bearer ${body.token}` },
    });
    expect(refused.status).toBe(401);
  });

  it('lets anyone pull a public repository, anonymously too, and nobody else push to it', async () => {
    const alice = await signIn(slipway, 'alice', alicePassword);
    await slipway.services.auth.identity.setVisibility(alice, 'alice/app', 'public');
    const anonymous = await fetchToken(slipway, ['repository:alice/app:pull,push']);
    expect(accessOf(anonymous.body.token)).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull'] },
    ]);
    const tags = await fetch(`${slipway.url}/v2/alice/app/tags/list`, {
      headers: { Authorization: `Bearer ${anonymous.body.token}` },
    });
    expect(await tags.json()).toEqual({ name: 'alice/app', tags: ['v1'] });
    const bob = await fetchToken(
      slipway,
      ['repository:alice/app:pull,push,delete'],
      basic('bob', bobPassword),
    );
    expect(accessOf(bob.body.token)).toEqual([{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    await slipway.services.auth.identity.setVisibility(alice, 'alice/app', 'private');
  });

  it('refuses a tampered token, a token for another service and an unknown signature', async () => {
    const { body } = await fetchToken(slipway, ['repository:alice/app:pull'], basic('alice', alicePassword));
    const [header, payload, signature] = body.token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const widened = Buffer.from(
      JSON.stringify({
        ...claims,
        access: [{ type: 'repository', name: 'bob/app', actions: ['pull', 'push'] }],
      }),
    ).toString('base64url');
    const foreignAudience = Buffer.from(JSON.stringify({ ...claims, aud: 'another-registry' })).toString(
      'base64url',
    );
    for (const token of [
      `${header}.${widened}.${signature}`,
      `${header}.${foreignAudience}.${signature}`,
      `${header}.${payload}.${'A'.repeat(signature.length)}`,
    ]) {
      const response = await fetch(`${slipway.url}/v2/alice/app/tags/list`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  it('accepts Basic credentials on /v2 itself, and a wrong password gets a challenge', async () => {
    const ok = await fetch(`${slipway.url}/v2/alice/app/tags/list`, {
      headers: { Authorization: basic('alice', alicePassword) },
    });
    expect(ok.status).toBe(200);
    const denied = await fetch(`${slipway.url}/v2/alice/app/tags/list`, {
      headers: { Authorization: basic('bob', bobPassword) },
    });
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('DENIED');
    const wrong = await fetch(`${slipway.url}/v2/`, {
      headers: { Authorization: basic('alice', 'not-her-password') },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
  });

  it('creates a namespace repository on first push only for someone allowed to', async () => {
    const bob = await fetchToken(slipway, ['repository:alice/newthing:pull,push'], basic('bob', bobPassword));
    expect(accessOf(bob.body.token)).toEqual([]);
    expect(
      await slipway.services.db.query("SELECT 1 FROM repositories WHERE name = 'alice/newthing'"),
    ).toMatchObject({ rowCount: 0 });
    const nowhere = await fetchToken(
      slipway,
      ['repository:nosuchns/app:push'],
      basic('alice', alicePassword),
    );
    expect(accessOf(nowhere.body.token)).toEqual([]);
  });

  it('throttles repeated failed logins with 429 and Retry-After, on the token endpoint and on /v2', async () => {
    await slipway.services.auth.identity.createUser(root, { name: 'carol', password: 'carol-password' });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++)
      statuses.push((await fetchToken(slipway, [], basic('carol', `guess-${i}`))).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // Even the right password waits now: a guesser cannot tell it from a wrong one.
    const throttled = await fetchToken(slipway, [], basic('carol', 'carol-password'));
    expect(throttled.status).toBe(429);
    expect(throttled.body.errors?.[0]?.code).toBe('TOOMANYREQUESTS');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    const onRegistry = await fetch(`${slipway.url}/v2/`, {
      headers: { Authorization: basic('carol', 'carol-password') },
    });
    expect(onRegistry.status).toBe(429);
    expect(onRegistry.headers.get('retry-after')).not.toBeNull();
  });
});
