import { describe, expect, it } from 'vitest';
import { recordFields, tableRows, useCliGateway } from './cli-user.ts';

describe('slipway org', () => {
  const gateway = useCliGateway();

  it('create makes an organization its creator administers through the owners team', async () => {
    const alice = await gateway.signedUpUser('alice');
    expect(await alice.ok(['org', 'create', 'acme', '--email', 'ops@acme.example'])).toBe(
      'created organization acme\n',
    );

    expect(tableRows(await alice.ok(['org', 'list']))).toEqual([
      expect.objectContaining({ name: 'acme', kind: 'organization', email: 'ops@acme.example' }),
    ]);
    const shown = await alice.ok(['org', 'show', 'acme']);
    const [details, teams] = shown.split('\n\n');
    expect(recordFields(details!)).toMatchObject({ name: 'acme', email: 'ops@acme.example' });
    expect(tableRows(teams!)).toEqual([
      expect.objectContaining({ team: 'owners', role: 'admin', members: '1' }),
    ]);
    expect(tableRows(await alice.ok(['org', 'member', 'list', 'acme', 'owners']))).toEqual([
      { name: 'alice', kind: 'user' },
    ]);
  });

  it('team put creates a team and changes its role; member add and remove change who is in it', async () => {
    await gateway.root.ok(['org', 'create', 'globex']);
    await gateway.root.ok(['admin', 'user', 'create', 'bob', '--password', 'bob-password-1']);

    expect(
      await gateway.root.ok([
        'org',
        'team',
        'put',
        'globex',
        'builders',
        '--role',
        'member',
        '--description',
        'CI',
      ]),
    ).toBe('team globex/builders has role member\n');
    await gateway.root.ok(['org', 'team', 'put', 'globex', 'builders', '--role', 'creator']);
    expect(await gateway.root.ok(['org', 'member', 'add', 'globex', 'builders', 'bob'])).toBe(
      'added bob to globex/builders\n',
    );
    expect(tableRows(await gateway.root.ok(['org', 'team', 'list', 'globex']))).toContainEqual({
      team: 'builders',
      role: 'creator',
      members: '1',
      description: 'CI',
    });
    expect(await gateway.root.json(['org', 'member', 'list', 'globex', 'builders'])).toEqual([
      { name: 'bob', kind: 'user' },
    ]);

    await gateway.root.ok(['org', 'member', 'remove', 'globex', 'builders', 'bob']);
    expect(await gateway.root.ok(['org', 'member', 'list', 'globex', 'builders'])).toBe(
      'globex/builders has no members\n',
    );
    await gateway.root.ok(['org', 'team', 'delete', 'globex', 'builders']);
    const teams = tableRows(await gateway.root.ok(['org', 'team', 'list', 'globex'])).map((row) => row.team);
    expect(teams).not.toContain('builders');
  });

  it("a member of an organization's team sees it, others do not", async () => {
    const carol = await gateway.signedUpUser('carol');
    const dave = await gateway.signedUpUser('dave');
    await carol.ok(['org', 'create', 'initech']);
    await carol.ok(['org', 'team', 'put', 'initech', 'readers', '--role', 'member']);
    await carol.ok(['org', 'member', 'add', 'initech', 'readers', 'dave']);
    expect(tableRows(await dave.ok(['org', 'list'])).map((row) => row.name)).toEqual(['initech']);

    await carol.ok(['org', 'member', 'remove', 'initech', 'readers', 'dave']);
    expect(await dave.ok(['org', 'list'])).toBe('no organizations\n');
  });

  it('an unknown organization is reported as one that does not exist, with exit 2', async () => {
    for (const args of [
      ['org', 'show', 'no-such-org'],
      ['org', 'team', 'list', 'no-such-org'],
      ['org', 'delete', 'no-such-org'],
    ]) {
      const result = await gateway.root.run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toBe('slipway: organization no-such-org does not exist\n');
    }
  });

  it('delete removes an organization', async () => {
    await gateway.root.ok(['org', 'create', 'umbrella']);
    expect(await gateway.root.ok(['org', 'delete', 'umbrella'])).toBe('deleted organization umbrella\n');
    expect((await gateway.root.run(['org', 'show', 'umbrella'])).code).toBe(2);
  });
});
