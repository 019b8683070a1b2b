import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntryResource, IssuedTokenResource } from '../../src/cli/resources.ts';
import { tableRows, useCliGateway, type CliUser } from './cli-user.ts';

describe('slipway audit query', () => {
  const gateway = useCliGateway();
  let alice: CliUser;
  let startedAt: string;

  const query = (...filters: string[]) => gateway.root.ok(['audit', 'query', ...filters]);
  const entries = (...filters: string[]) =>
    gateway.root.json<AuditEntryResource[]>(['audit', 'query', ...filters]);

  beforeAll(async () => {
    startedAt = new Date().toISOString();
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
    await gateway.root.ok(['repo', 'create', 'acme/web']);
    alice = await gateway.signedUpUser('alice');
    await gateway.root.ok(['repo', 'permission', 'set', 'acme/app', 'user', 'alice', 'read']);
    await alice.ok(['token', 'create', 'laptop']);
  });

  it('shows the actions just done, newest first', async () => {
    const rows = tableRows(await query('--namespace', 'acme'));
    expect(rows.map((row) => row.kind)).toEqual([
      'change_repo_permission',
      'create_repo',
      'create_repo',
      'create_organization',
    ]);
    expect(rows[0]).toMatchObject({
      actor: 'root',
      scope: 'acme/app',
      target: 'user:alice',
      ok: 'yes',
    });
  });

  it('filters by repository, kind and actor', async () => {
    expect((await entries('--repository', 'acme/web')).map((entry) => entry.kind)).toEqual(['create_repo']);
    const permissionChanges = await entries('--kind', 'change_repo_permission,create_organization');
    expect(permissionChanges.map((entry) => entry.kind)).toEqual([
      'change_repo_permission',
      'create_organization',
    ]);
    const byAlice = await entries('--actor', 'alice');
    expect(byAlice.length).toBeGreaterThan(0);
    expect(byAlice.every((entry) => entry.actor === 'alice')).toBe(true);
    expect(byAlice.map((entry) => entry.target)).toContain('laptop');
  });

  it('a user who is not a superuser reads what they did, and is told why the whole log is refused', async () => {
    const own = tableRows(
      await alice.ok(['audit', 'query', '--actor', 'alice', '--kind', 'create_personal_token']),
    );
    expect(own.map((row) => row.target)).toContain('laptop');

    const whole = await alice.run(['audit', 'query']);
    expect(whole.code).toBe(2);
    expect(whole.stderr).toMatch(/^slipway: only superusers read the whole audit log/);
  });

  it('filters by time', async () => {
    expect(await query('--since', '2999-01-01')).toBe('no audit entries match\n');
    expect(await query('--until', startedAt, '--namespace', 'acme')).toBe('no audit entries match\n');
    expect((await entries('--since', startedAt, '--namespace', 'acme')).length).toBe(4);
    const bad = await gateway.root.run(['audit', 'query', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected a date and time');
  });

  it('follows the pages of a long log up to --limit', async () => {
    const { token } = await gateway.root.json<IssuedTokenResource>(['token', 'create', 'bulk']);
    for (let index = 0; index < 150; index++) {
      const response = await fetch(`${gateway.slipway.url}/api/v1/user/tokens`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: `bulk-${index}` }),
      });
      expect(response.status).toBe(201);
    }
    const all = await entries('--actor', 'root', '--kind', 'create_personal_token', '--limit', '1000');
    // 150 here, the one they were made with and the one `slipway login` made.
    expect(all).toHaveLength(152);
    expect(new Set(all.map((entry) => entry.id)).size).toBe(152);

    const cut = await gateway.root.run([
      'audit',
      'query',
      '--kind',
      'create_personal_token',
      '--limit',
      '120',
    ]);
    expect(tableRows(cut.stdout)).toHaveLength(120);
    expect(cut.stderr).toContain('showing the first 120; raise --limit to see more');
  });
});
