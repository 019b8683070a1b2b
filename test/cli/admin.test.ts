import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigningKeys } from '../../src/gateway/auth/signing-keys.ts';
import type { AccountResource } from '../../src/cli/resources.ts';
import { CliUser, recordFields, tableRows, useCliGateway } from './cli-user.ts';

describe('slipway admin user', () => {
  const gateway = useCliGateway();

  const usernames = async () =>
    tableRows(await gateway.root.ok(['admin', 'user', 'list'])).map((row) => row.name);

  it('create adds a user that list then shows, as a table and as JSON', async () => {
    const created = await gateway.root.ok([
      'admin',
      'user',
      'create',
      'carol',
      '--email',
      'carol@example.com',
      '--password',
      'carol-password-1',
    ]);
    expect(created).toBe('created user carol\n');

    const rows = tableRows(await gateway.root.ok(['admin', 'user', 'list']));
    expect(rows).toContainEqual(
      expect.objectContaining({ name: 'carol', kind: 'user', email: 'carol@example.com', superuser: 'no' }),
    );
    expect(rows).toContainEqual(expect.objectContaining({ name: 'root', superuser: 'yes' }));

    const users = await gateway.root.json<AccountResource[]>(['admin', 'user', 'list']);
    expect(users).toContainEqual(
      expect.objectContaining({ name: 'carol', email: 'carol@example.com', superuser: false }),
    );
  });

  it('set-password replaces the password a user logs in with', async () => {
    await gateway.signedUpUser('dave');
    await gateway.root.ok(['admin', 'user', 'set-password', 'dave', '--password-stdin'], {
      stdin: 'dave-password-2\n',
    });
    const terminal = await gateway.newUser();
    const old = await terminal.run([
      'login',
      gateway.slipway.url,
      '--username',
      'dave',
      '--password',
      'dave-password-1',
    ]);
    expect(old.code).toBe(2);
    await terminal.login(gateway.slipway.url, 'dave', 'dave-password-2');
    expect(recordFields(await terminal.ok(['whoami'])).name).toBe('dave');
  });

  it('set-superuser lets a user administer users, and takes it back', async () => {
    const erin = await gateway.signedUpUser('erin');
    const before = await erin.run(['admin', 'user', 'list']);
    expect(before.code).toBe(2);
    expect(before.stderr).toMatch(/^slipway: /);

    expect(await gateway.root.ok(['admin', 'user', 'set-superuser', 'erin', 'on'])).toBe(
      'erin is now a superuser\n',
    );
    expect(tableRows(await erin.ok(['admin', 'user', 'list'])).map((row) => row.name)).toContain('erin');

    await gateway.root.ok(['admin', 'user', 'set-superuser', 'erin', 'off']);
    expect((await erin.run(['admin', 'user', 'list'])).code).toBe(2);
  });

  it('delete removes the user, and a second delete says it is not found', async () => {
    await gateway.root.ok(['admin', 'user', 'create', 'frank', '--password', 'frank-password-1']);
    expect(await gateway.root.ok(['admin', 'user', 'delete', 'frank'])).toBe('deleted user frank\n');
    expect(await usernames()).not.toContain('frank');

    const again = await gateway.root.run(['admin', 'user', 'delete', 'frank']);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe('slipway: user frank does not exist\n');
  });
});

describe('slipway admin rotate-signing-key', () => {
  let dataDir: string;
  let operator: CliUser;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-cli-data-'));
    operator = await CliUser.create();
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await operator?.remove();
  });

  it('writes a new key into the data directory, which signs from then on while the old one still verifies', async () => {
    const first = await operator.json<{ file: string }>(['admin', 'rotate-signing-key', '--data', dataDir]);
    const before = await loadSigningKeys(dataDir);

    const rotated = await operator.run(['admin', 'rotate-signing-key', '--data', dataDir]);
    expect(rotated.code).toBe(0);
    const second = /^wrote (\S+)$/m.exec(rotated.stdout)?.[1];
    expect(second).toBeDefined();
    expect(second).not.toBe(first.file);
    expect((await stat(second!)).mode & 0o777).toBe(0o600);

    const after = await loadSigningKeys(dataDir);
    expect(after.signing.kid).not.toBe(before.signing.kid);
    expect([...after.byKid.keys()]).toContain(before.signing.kid);
    expect(await readdir(join(dataDir, 'auth', 'signing-keys'))).toHaveLength(2);
  });

  it('refuses when the configuration names its keys', async () => {
    const config = join(dataDir, 'slipway.yaml');
    await writeFile(config, `auth:\n  signingKeys: [${join(dataDir, 'configured.pem')}]\n`);
    const refused = await operator.run([
      'admin',
      'rotate-signing-key',
      '--data',
      dataDir,
      '--config',
      config,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('auth.signingKeys');
  });
});
