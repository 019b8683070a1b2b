import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshKeyPair } from '../helpers/git-servers.ts';
import { customGitTriggerArgs, recordFields, useCliGateway } from './cli-user.ts';

/**
 * `slipway trigger create --known-hosts FILE` and `slipway trigger known-hosts ID FILE|none` give the trigger
 * the SSH server's host keys; show lists them.
 */
describe('slipway trigger with known hosts', () => {
  const gateway = useCliGateway();
  let dir: string;
  let hostKey: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-known-hosts-'));
    hostKey = (await sshKeyPair(dir, 'host')).publicKey.split(' ').slice(0, 2).join(' ');
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const create = (knownHostsFile: string) =>
    gateway.root.run(
      customGitTriggerArgs(
        'acme/app',
        'ssh://git@git.example.test:2222/acme/app.git',
        '--known-hosts',
        knownHostsFile,
      ),
    );

  it('creates the trigger with the file’s keys, and show prints their hosts and types', async () => {
    const file = join(dir, 'known_hosts');
    await writeFile(file, `# ssh-keyscan -p 2222 git.example.test\n[git.example.test]:2222 ${hostKey}\n`);
    const created = await create(file);
    expect(created.code, created.stderr).toBe(0);
    const id = recordFields(created.stdout)['webhook url']!.split('/').at(-1)!;

    const shown = recordFields(await gateway.root.ok(['trigger', 'show', id]));
    expect(shown['known hosts']).toBe('1 key: [git.example.test]:2222 ssh-ed25519');
    const json = await gateway.root.json<{ knownHosts: string }>(['trigger', 'show', id]);
    expect(json.knownHosts).toContain(`[git.example.test]:2222 ${hostKey}`);

    const second = join(dir, 'known_hosts_2');
    await writeFile(second, `git.example.test ${hostKey}\n|1|c2FsdA==|aGFzaA== ${hostKey}\n`);
    expect(await gateway.root.ok(['trigger', 'known-hosts', id, second])).toContain(
      '2 keys: git.example.test ssh-ed25519; (hashed host) ssh-ed25519',
    );
    await gateway.root.ok(['trigger', 'known-hosts', id, 'none']);
    const cleared = recordFields(await gateway.root.ok(['trigger', 'show', id]));
    expect(cleared['known hosts']).toBe('none: SSH clones accept a new host key unchecked');
  });

  it('refuses a file with a line that is not a known host, naming the line', async () => {
    const file = join(dir, 'broken_known_hosts');
    await writeFile(file, `[git.example.test]:2222 ${hostKey}\ngit.example.test ssh-ed25519\n`);
    const created = await create(file);
    expect(created.code).not.toBe(0);
    expect(created.stderr).toContain('known hosts line 2 ("git.example.test ssh-ed25519")');
  });
});
