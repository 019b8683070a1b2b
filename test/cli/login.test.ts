import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminPassword, adminUser } from '../helpers/auth.ts';
import { recordFields, useCliGateway, type CliUser } from './cli-user.ts';

describe('slipway login, logout and whoami', () => {
  const gateway = useCliGateway();

  const credentialsOf = async (user: CliUser, configHome = user.configHome) =>
    JSON.parse(await readFile(join(configHome, 'slipway', 'credentials.json'), 'utf8')) as { token: string };

  const apiStatus = async (token: string) =>
    (await fetch(`${gateway.slipway.url}/api/v1/user`, { headers: { Authorization: `Bearer ${token}` } }))
      .status;

  it('stores a token only the user can read, and whoami then shows the account', async () => {
    const user = await gateway.newUser();
    const login = await user.run([
      'login',
      gateway.slipway.url,
      '--username',
      adminUser,
      '--password',
      adminPassword,
    ]);
    expect(login.code).toBe(0);
    expect(login.stdout).toContain(`logged in to ${gateway.slipway.url} as root`);

    const file = join(user.configHome, 'slipway', 'credentials.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await apiStatus((await credentialsOf(user)).token)).toBe(200);

    expect(recordFields(await user.ok(['whoami']))).toMatchObject({
      name: 'root',
      kind: 'user',
      superuser: 'yes',
      gateway: gateway.slipway.url,
    });
    expect(await user.json(['whoami'])).toMatchObject({
      name: 'root',
      superuser: true,
      url: gateway.slipway.url,
    });
  });

  it('stores the login under ~/.config/slipway when XDG_CONFIG_HOME is not set', async () => {
    const user = await gateway.newUser();
    await user.ok(['login', gateway.slipway.url, '--username', adminUser, '--password', adminPassword], {
      env: { XDG_CONFIG_HOME: '' },
    });
    expect(await apiStatus((await credentialsOf(user, join(user.home, '.config'))).token)).toBe(200);
  });

  it('takes the password from stdin', async () => {
    const user = await gateway.newUser();
    const login = await user.run(
      ['login', gateway.slipway.url, '--username', adminUser, '--password-stdin'],
      { stdin: `${adminPassword}\n` },
    );
    expect(login.code).toBe(0);
    expect(recordFields(await user.ok(['whoami'])).name).toBe('root');
  });

  it('logout revokes the stored token, and whoami then says to log in', async () => {
    const user = await gateway.newUser();
    await user.login(gateway.slipway.url, adminUser, adminPassword);
    const { token } = await credentialsOf(user);

    expect(await user.ok(['logout'])).toContain(`logged out of ${gateway.slipway.url}`);
    expect(await apiStatus(token)).toBe(401);
    const whoami = await user.run(['whoami']);
    expect(whoami.code).toBe(2);
    expect(whoami.stderr).toBe('slipway: not logged in: run "slipway login URL" first\n');
  });

  it('logging in again replaces the stored login and revokes its token', async () => {
    const user = await gateway.newUser();
    await user.login(gateway.slipway.url, adminUser, adminPassword);
    const first = await credentialsOf(user);
    await user.login(gateway.slipway.url, adminUser, adminPassword);
    const second = await credentialsOf(user);

    expect(second.token).not.toBe(first.token);
    expect(await apiStatus(first.token)).toBe(401);
    expect(await apiStatus(second.token)).toBe(200);
  });

  it('a wrong password exits 2 with the reason, and stores nothing', async () => {
    const user = await gateway.newUser();
    const login = await user.run([
      'login',
      gateway.slipway.url,
      '--username',
      adminUser,
      '--password',
      'wrong-1',
    ]);
    expect(login.code).toBe(2);
    expect(login.stderr).toMatch(/^slipway: .*(password|credentials)/i);
    expect(login.stdout).toBe('');
    const whoami = await user.run(['whoami']);
    expect(whoami.stderr).toContain('run "slipway login URL"');
  });

  it('SLIPWAY_URL and SLIPWAY_TOKEN stand in for a stored login', async () => {
    const { token } = await gateway.root.json<{ token: string }>(['token', 'create', 'ci-env']);
    const user = await gateway.newUser();

    const env = { SLIPWAY_URL: gateway.slipway.url, SLIPWAY_TOKEN: token };
    expect(recordFields(await user.ok(['whoami'], { env })).name).toBe('root');

    const refused = await user.run(['whoami'], { env: { ...env, SLIPWAY_TOKEN: 'slw_not-a-token' } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^slipway: .*check SLIPWAY_TOKEN/);

    const half = await user.run(['whoami'], { env: { SLIPWAY_URL: gateway.slipway.url } });
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('SLIPWAY_URL is set without SLIPWAY_TOKEN');
  });

  it('a gateway that does not answer exits 1 and names it', async () => {
    const user = await gateway.newUser();
    const down = await user.run(['whoami'], {
      env: { SLIPWAY_URL: 'http://127.0.0.1:9', SLIPWAY_TOKEN: 'slw_x' },
    });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^slipway: cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it('a mistyped command exits 2 and says what was wrong', async () => {
    const user = await gateway.newUser();
    const typo = await user.run(['whoamii']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/^slipway: unknown command 'whoamii'/);
  });
});
