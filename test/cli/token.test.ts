import { describe, expect, it } from 'vitest';
import type { IssuedTokenResource } from '../../src/cli/resources.ts';
import { recordFields, tableRows, useCliGateway } from './cli-user.ts';

describe('slipway token', () => {
  const gateway = useCliGateway();

  const whoamiWith = async (token: string) => {
    const user = await gateway.newUser();
    return user.run(['whoami'], { env: { SLIPWAY_URL: gateway.slipway.url, SLIPWAY_TOKEN: token } });
  };

  it('create prints the token once, and the token signs in as its owner', async () => {
    const alice = await gateway.signedUpUser('alice');
    const created = await alice.run(['token', 'create', 'laptop', '--expires-in-days', '30']);
    expect(created.code).toBe(0);
    const token = /^\s+(slw_\S+)$/m.exec(created.stdout)?.[1];
    expect(token).toBeDefined();
    expect(created.stderr).toContain('it will not be shown again');

    expect(recordFields((await whoamiWith(token!)).stdout).name).toBe('alice');
    const listed = await alice.ok(['token', 'list']);
    expect(listed).not.toContain(token!);
    const row = tableRows(listed).find((entry) => entry.name === 'laptop');
    expect(row).toMatchObject({ kind: 'personal', 'last used': expect.stringMatching(/^\d{4}-/) });
    const days = (Date.parse(row!.expires!) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('a token made with --expires-in-days never does not expire', async () => {
    const issued = await gateway.root.json<IssuedTokenResource>([
      'token',
      'create',
      'forever',
      '--expires-in-days',
      'never',
    ]);
    expect(issued.expiresAt).toBeNull();
    const row = tableRows(await gateway.root.ok(['token', 'list'])).find((entry) => entry.name === 'forever');
    expect(row?.expires).toBe('never');
  });

  it('revoke makes the token stop working, and it leaves the list', async () => {
    const issued = await gateway.root.json<IssuedTokenResource>(['token', 'create', 'short-lived']);
    expect((await whoamiWith(issued.token)).code).toBe(0);

    expect(await gateway.root.ok(['token', 'revoke', String(issued.id)])).toBe(
      `revoked token ${issued.id}\n`,
    );
    const refused = await whoamiWith(issued.token);
    expect(refused.code).toBe(2);
    const names = tableRows(await gateway.root.ok(['token', 'list'])).map((entry) => entry.name);
    expect(names).not.toContain('short-lived');
  });

  it("cannot revoke someone else's token", async () => {
    const bob = await gateway.signedUpUser('bob');
    const issued = await gateway.root.json<IssuedTokenResource>(['token', 'create', 'roots']);
    const refused = await bob.run(['token', 'revoke', String(issued.id)]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`slipway: you have no token ${issued.id}\n`);
    expect((await whoamiWith(issued.token)).code).toBe(0);
  });
});
