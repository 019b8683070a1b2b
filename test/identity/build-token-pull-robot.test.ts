import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedBuildToken } from '../../src/identity/build-tokens.ts';
import { accessOf, fetchToken, startSecuredSlipway } from '../helpers/auth.ts';
import { basicOf, IdentityFixtures, type Login } from '../helpers/identity-fixtures.ts';
import { errorCode, OciClient, type PushedImage } from '../helpers/oci-client.ts';
import type { TestSlipway } from '../helpers/slipway.ts';

const minutes = (n: number) => new Date(Date.now() + n * 60_000);

/**
 * A build token with a pull robot: it pulls what the robot may read, as the robot's own access resolves,
 * and never pushes or deletes there; without the robot (none, or deleted) it is refused.
 */
describe('build tokens with a pull robot', () => {
  let slipway: TestSlipway;
  let fixtures: IdentityFixtures;
  let base: PushedImage;

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    const root = new OciClient(slipway.url, { Authorization: basicOf(fixtures.rootLogin) });
    base = await root.pushImage('acme/base', '1');
    await root.pushImage('acme/secret', '1');
    for (const robot of ['reader', 'writer', 'idle', 'doomed']) await fixtures.robot('acme', robot);
    await fixtures.grant('acme/base', { user: 'acme+reader' }, 'read');
    await fixtures.grant('acme/base', { user: 'acme+writer' }, 'write');
    await fixtures.grant('acme/base', { user: 'acme+doomed' }, 'read');
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  const issue = async (buildId: string, pullRobot?: string): Promise<Login> => {
    const issued: IssuedBuildToken = await slipway.services.auth.buildTokens.issueBuildToken({
      buildId,
      repository: 'acme/app',
      expiresAt: minutes(10),
      ...(pullRobot !== undefined ? { pullRobot } : {}),
    });
    return { username: issued.username, password: issued.token };
  };
  const grantedTo = async (login: Login, repository: string) => {
    const principal = await slipway.services.auth.authenticator.authenticate(login.username, login.password);
    return slipway.services.auth.policy.grantedActions(principal, repository, ['pull', 'push', 'delete']);
  };

  it("pulls what its pull robot may read, and never pushes or deletes there, even with the robot's write", async () => {
    for (const robot of ['acme+reader', 'acme+writer']) {
      const login = await issue(`robot-${robot.slice(5)}`, robot);
      expect(await grantedTo(login, 'acme/base'), robot).toEqual(['pull']);
      expect(await grantedTo(login, 'acme/secret'), robot).toEqual([]);
      expect(await grantedTo(login, 'acme/app'), robot).toEqual(['pull', 'push']);

      const direct = new OciClient(slipway.url, { Authorization: basicOf(login) });
      expect(await direct.status('/v2/acme/base/manifests/1')).toBe(200);
      expect(await direct.status(`/v2/acme/base/blobs/${base.configDigest}`)).toBe(200);
      expect(await direct.status('/v2/acme/secret/manifests/1')).toBe(403);
      const upload = await direct.fetch('/v2/acme/base/blobs/uploads/', { method: 'POST' });
      expect(upload.status).toBe(403);
      expect(await errorCode(upload)).toBe('DENIED');
      const deleted = await direct.fetch(`/v2/acme/base/manifests/${base.digest}`, { method: 'DELETE' });
      expect(deleted.status).toBe(403);

      const { status, body } = await fetchToken(
        slipway,
        ['repository:acme/base:pull,push,delete', 'repository:acme/secret:pull'],
        basicOf(login),
      );
      expect(status).toBe(200);
      expect(accessOf(body.token)).toEqual([{ type: 'repository', name: 'acme/base', actions: ['pull'] }]);
      const bearer = new OciClient(slipway.url, { Authorization: `Bearer ${body.token}` });
      expect(await bearer.status('/v2/acme/base/manifests/1')).toBe(200);
    }
  });

  it('acts as the build, not the robot, in the audit log', async () => {
    const login = await issue('audited-1', 'acme+reader');
    const direct = new OciClient(slipway.url, { Authorization: basicOf(login) });
    expect(await direct.status('/v2/acme/base/manifests/1')).toBe(200);
    const audit = slipway.services.auth.audit;
    await audit.flush();
    const pulls = await audit.query({ repository: 'acme/base', kinds: ['pull_repo'], limit: 100 });
    expect(pulls.entries.map((entry) => entry.actor)).toContain('build@audited-1');
    expect(pulls.entries.map((entry) => entry.actor)).not.toContain('acme+reader');
    const issued = await audit.query({ repository: 'acme/app', kinds: ['issue_build_token'], limit: 100 });
    expect(issued.entries.find((entry) => entry.target === 'build@audited-1')?.metadata).toMatchObject({
      pullRobot: 'acme+reader',
      pullRobotFound: true,
    });
  });

  it('is refused private repositories without a pull robot, or with one that may not read them', async () => {
    for (const [buildId, robot] of [
      ['none-1', undefined],
      ['idle-1', 'acme+idle'],
      ['unknown-1', 'acme+nobody'],
    ] as const) {
      const login = await issue(buildId, robot);
      expect(await grantedTo(login, 'acme/base'), buildId).toEqual([]);
      const direct = new OciClient(slipway.url, { Authorization: basicOf(login) });
      expect(await direct.status('/v2/acme/base/manifests/1'), buildId).toBe(403);
    }
  });

  it('loses the access at once when the robot is deleted, with Basic credentials and for new registry tokens', async () => {
    const login = await issue('doomed-1', 'acme+doomed');
    const direct = new OciClient(slipway.url, { Authorization: basicOf(login) });
    expect(await direct.status('/v2/acme/base/manifests/1')).toBe(200);

    await slipway.services.auth.identity.deleteRobot(fixtures.root, 'acme+doomed');

    expect(await direct.status('/v2/acme/base/manifests/1')).toBe(403);
    expect(await grantedTo(login, 'acme/base')).toEqual([]);
    const { body } = await fetchToken(slipway, ['repository:acme/base:pull'], basicOf(login));
    expect(accessOf(body.token)).toEqual([]);
    // Its own repository is as before.
    expect(await grantedTo(login, 'acme/app')).toEqual(['pull', 'push']);
  });
});
