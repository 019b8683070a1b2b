import { beforeAll, describe, expect, it } from 'vitest';
import type { AccountResource } from '../../src/cli/resources.ts';
import { accessOf, basic, fetchToken } from '../helpers/auth.ts';
import { recordFields, tableRows, useCliGateway } from './cli-user.ts';

describe('slipway robot', () => {
  const gateway = useCliGateway();

  /** The actions a registry token issued to these credentials grants on acme/app; null when refused. */
  const granted = async (username: string, token: string) => {
    const answer = await fetchToken(
      gateway.slipway,
      ['repository:acme/app:pull,push'],
      basic(username, token),
    );
    return answer.status === 200 ? (accessOf(answer.body.token)[0]?.actions ?? []) : null;
  };

  beforeAll(async () => {
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
  });

  it('create prints a token that signs the robot in to the registry', async () => {
    const created = await gateway.root.run(['robot', 'create', 'acme+ci', '--description', 'builds on main']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^created robot acme\+ci; its token:$/m);
    const token = /^\s+(\S+)$/m.exec(created.stdout)?.[1];
    expect(token).toBeDefined();

    await gateway.root.ok(['repo', 'permission', 'set', 'acme/app', 'robot', 'acme+ci', 'write']);
    expect((await granted('acme+ci', token!))?.sort()).toEqual(['pull', 'push']);
  });

  it('list and show describe robots without their tokens', async () => {
    const robot = await gateway.root.json<AccountResource & { token: string }>([
      'robot',
      'create',
      'acme+mirror',
      '--description',
      'pulls for the mirror',
    ]);
    const listed = await gateway.root.ok(['robot', 'list', 'acme']);
    expect(listed).not.toContain(robot.token);
    expect(tableRows(listed)).toContainEqual(
      expect.objectContaining({ name: 'acme+mirror', kind: 'robot', description: 'pulls for the mirror' }),
    );
    expect(recordFields(await gateway.root.ok(['robot', 'show', 'acme+mirror']))).toMatchObject({
      name: 'acme+mirror',
      description: 'pulls for the mirror',
    });
  });

  it('regenerate gives a new token and the old one stops working at once', async () => {
    const { token: old } = await gateway.root.json<{ token: string }>(['robot', 'create', 'acme+deploy']);
    expect(await granted('acme+deploy', old)).not.toBeNull();

    const { token: renewed } = await gateway.root.json<{ name: string; token: string }>([
      'robot',
      'regenerate',
      'acme+deploy',
    ]);
    expect(renewed).not.toBe(old);
    expect(await granted('acme+deploy', old)).toBeNull();
    expect(await granted('acme+deploy', renewed)).not.toBeNull();
  });

  it('delete removes the robot and its token stops working', async () => {
    const { token } = await gateway.root.json<{ token: string }>(['robot', 'create', 'acme+temp']);
    expect(await gateway.root.ok(['robot', 'delete', 'acme+temp'])).toBe('deleted robot acme+temp\n');
    expect(await granted('acme+temp', token)).toBeNull();
    expect(tableRows(await gateway.root.ok(['robot', 'list', 'acme'])).map((row) => row.name)).not.toContain(
      'acme+temp',
    );
  });

  it('a name without namespace+ is refused before asking the gateway', async () => {
    const refused = await gateway.root.run(['robot', 'show', 'ci']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'slipway: "ci" is not a robot name: robots are namespace+name, e.g. acme+ci\n',
    );
  });
});
