import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/identity/accounts.ts';
import { OciClient } from '../../helpers/oci-client.ts';
import {
  adminPassword,
  adminUser,
  basic,
  fetchToken,
  signIn,
  startSecuredSlipway,
} from '../../helpers/auth.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

describe('audit log and catalog of a secured registry', () => {
  let slipway: TestSlipway;
  let root: Principal;

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = await signIn(slipway, adminUser, adminPassword);
    const { identity } = slipway.services.auth;
    await identity.createUser(root, { name: 'dana', password: 'dana-password' });
    await identity.createUser(root, { name: 'eve', password: 'eve-password' });
    await identity.createOrganization(root, { name: 'acme' });
    await identity.createRepository(root, 'acme/public-app', 'public');
    await identity.createRepository(root, 'acme/secret-app', 'private');
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  const clientFor = async (scopes: string[], authorization?: string) =>
    new OciClient(slipway.url, {
      Authorization: `Bearer ${(await fetchToken(slipway, scopes, authorization)).body.token}`,
    });

  it('records pushes, pulls, deletions and logins with actor, address and target', async () => {
    const dana = await clientFor(['repository:dana/app:pull,push,delete'], basic('dana', 'dana-password'));
    const image = await dana.pushImage('dana/app', 'v1');
    expect((await dana.fetch('/v2/dana/app/manifests/v1')).status).toBe(200);
    expect((await dana.fetch(`/v2/dana/app/manifests/${image.digest}`, { method: 'DELETE' })).status).toBe(
      202,
    );
    expect((await fetchToken(slipway, [], basic('dana', 'wrong-password'))).status).toBe(401);
    await slipway.services.auth.audit.flush();

    const { entries } = await slipway.services.auth.identity.queryAudit(root, {
      repository: 'dana/app',
      limit: 50,
    });
    expect(entries.map((e) => [e.kind, e.actor, e.target])).toEqual([
      ['delete_manifest', 'dana', image.digest],
      ['pull_repo', 'dana', 'v1'],
      ['push_repo', 'dana', 'v1'],
      ['create_repo', 'dana', null],
    ]);
    expect(entries.every((e) => e.ip === '127.0.0.1' || e.kind === 'create_repo')).toBe(true);

    const failures = await slipway.services.auth.identity.queryAudit(root, {
      kinds: ['login_failure'],
      limit: 10,
    });
    expect(failures.entries[0]).toMatchObject({ actor: 'dana', success: false, ip: '127.0.0.1' });
  });

  it('folds repeated identical pulls within one batch into one entry with a count', async () => {
    const dana = await clientFor(['repository:dana/busy:pull,push'], basic('dana', 'dana-password'));
    await dana.pushImage('dana/busy', 'v1');
    await slipway.services.auth.audit.flush();
    await Promise.all(
      Array.from({ length: 20 }, () => dana.fetch('/v2/dana/busy/manifests/v1').then((r) => r.arrayBuffer())),
    );
    await slipway.services.auth.audit.flush();
    const { entries } = await slipway.services.auth.identity.queryAudit(root, {
      repository: 'dana/busy',
      kinds: ['pull_repo'],
      limit: 50,
    });
    expect(entries.reduce((sum, e) => sum + Number(e.metadata.count), 0)).toBe(20);
    expect(entries.length).toBeLessThan(20);
  });

  it('lets a user read the audit of their own namespace but not the whole log', async () => {
    const dana = await signIn(slipway, 'dana', 'dana-password');
    const own = await slipway.services.auth.identity.queryAudit(dana, { namespace: 'dana', limit: 5 });
    expect(own.entries.length).toBeGreaterThan(0);
    await expect(slipway.services.auth.identity.queryAudit(dana, { limit: 5 })).rejects.toMatchObject({
      code: 'SLW_ERR_FORBIDDEN',
    });
    await expect(
      slipway.services.auth.identity.queryAudit(dana, { namespace: 'acme', limit: 5 }),
    ).rejects.toMatchObject({
      code: 'SLW_ERR_NOT_FOUND',
    });
  });

  it('lists in the catalog only the repositories the caller can read', async () => {
    const rootClient = await clientFor(
      ['repository:acme/public-app:push,pull', 'repository:acme/secret-app:push,pull'],
      basic(adminUser, adminPassword),
    );
    await rootClient.pushImage('acme/public-app', 'v1');
    await rootClient.pushImage('acme/secret-app', 'v1');
    await (
      await clientFor(['repository:eve/own:push,pull'], basic('eve', 'eve-password'))
    ).pushImage('eve/own', 'v1');

    const catalogOf = async (authorization: string) => {
      const client = await clientFor(['registry:catalog:*'], authorization);
      const response = await client.fetch('/v2/_catalog');
      expect(response.status).toBe(200);
      return ((await response.json()) as { repositories: string[] }).repositories;
    };
    expect(await catalogOf(basic('eve', 'eve-password'))).toEqual(['acme/public-app', 'eve/own']);
    expect(await catalogOf(basic(adminUser, adminPassword))).toEqual([
      'acme/public-app',
      'acme/secret-app',
      'dana/busy',
      'eve/own',
    ]);

    // Paging still returns full pages of visible names.
    const eve = await clientFor(['registry:catalog:*'], basic('eve', 'eve-password'));
    const first = await eve.fetch('/v2/_catalog?n=1');
    expect(await first.json()).toEqual({ repositories: ['acme/public-app'] });
    expect(first.headers.get('link')).toContain('last=acme%2Fpublic-app');

    const anonymous = await fetchToken(slipway, ['registry:catalog:*']);
    const refused = await fetch(`${slipway.url}/v2/_catalog`, {
      headers: { Authorization: `Bearer ${anonymous.body.token}` },
    });
    expect(refused.status).toBe(401);
  });
});
