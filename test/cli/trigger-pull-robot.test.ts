import { beforeAll, describe, expect, it } from 'vitest';
import { customGitTriggerArgs, recordFields, useCliGateway } from './cli-user.ts';

/** `slipway trigger create --pull-robot`, `trigger pull-robot` and `trigger show`. */
describe('slipway trigger with a pull robot', () => {
  const gateway = useCliGateway();

  beforeAll(async () => {
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
    await gateway.root.ok(['robot', 'create', 'acme+builder']);
  });

  it('creates a trigger with a pull robot, shows it, changes it to none, and refuses a borrowed one', async () => {
    const created = await gateway.root.json<{ id: string; pullRobot: string | null }>(
      customGitTriggerArgs(
        'acme/app',
        'https://git.example.com/acme/app.git',
        '--pull-robot',
        'acme+builder',
      ),
    );
    expect(created.pullRobot).toBe('acme+builder');
    expect(recordFields(await gateway.root.ok(['trigger', 'show', created.id]))['pull robot']).toBe(
      'acme+builder',
    );

    expect(await gateway.root.ok(['trigger', 'pull-robot', created.id, 'none'])).toContain(
      'has no pull robot',
    );
    expect(recordFields(await gateway.root.ok(['trigger', 'show', created.id]))['pull robot']).toBe('none');

    const bob = await gateway.signedUpUser('bob');
    await gateway.root.ok(['repo', 'permission', 'set', 'acme/app', 'user', 'bob', 'admin']);
    const refused = await bob.run(['trigger', 'pull-robot', created.id, 'acme+builder']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('only administrators of acme may');
  });
});
