import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitSshServer, type GitSshServer } from '../helpers/git-servers.ts';
import { requireTool, run } from '../helpers/tools.ts';
import { customGitTriggerArgs, useCliGateway } from './cli-user.ts';

/**
 * `slipway trigger create --scan-host-keys` and `slipway trigger known-hosts ID --scan` scan the SSH clone
 * URL's host keys with ssh-keyscan, print their fingerprints and make them the trigger's known hosts.
 */
describe('slipway trigger with scanned host keys', () => {
  const gateway = useCliGateway();
  let dir: string;
  let sshd: GitSshServer;
  let cloneUrl: string;
  /** The sshd's host key as a known_hosts line for its address, and as `ssh-keygen -lf` prints that. */
  let knownHostsLine: string;
  let fingerprintLine: string;
  /** A loopback port that accepts connections and closes them without a word of SSH. */
  let silent: Server;

  beforeAll(async () => {
    requireTool('ssh-keyscan', 'openssh-client');
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-scan-'));
    sshd = await startGitSshServer(join(dir, 'sshd'), []);
    cloneUrl = sshd.url('/srv/git/app.git');
    const { hostname, port } = new URL(cloneUrl);
    knownHostsLine = `[${hostname}]:${port} ${sshd.hostPublicKey}`;
    const file = join(dir, 'expected_known_hosts');
    await writeFile(file, `${knownHostsLine}\n`);
    fingerprintLine = (await run(requireTool('ssh-keygen', 'openssh-client'), ['-lf', file])).stdout.trim();
    silent = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
  });
  afterAll(async () => {
    await sshd?.stop();
    silent?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const knownHostsOf = async (id: string) =>
    (await gateway.root.json<{ knownHosts: string | null }>(['trigger', 'show', id])).knownHosts;
  const triggerCount = async () =>
    (await gateway.root.json<unknown[]>(['trigger', 'list', '--repo', 'acme/app'])).length;

  it('creates the trigger with the keys the server presents, printing their fingerprints', async () => {
    const created = await gateway.root.run([
      '--json',
      ...customGitTriggerArgs('acme/app', cloneUrl, '--scan-host-keys'),
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toContain('compare them with the fingerprints your git host publishes');
    expect(created.stderr).toContain(fingerprintLine);
    const { id, knownHosts } = JSON.parse(created.stdout) as { id: string; knownHosts: string };
    expect(knownHosts.trim()).toBe(knownHostsLine);

    expect(await gateway.root.ok(['trigger', 'known-hosts', id, 'none'])).toContain('none');
    expect(await knownHostsOf(id)).toBeNull();
    const rescanned = await gateway.root.run(['trigger', 'known-hosts', id, '--scan']);
    expect(rescanned.code, rescanned.stderr).toBe(0);
    expect(rescanned.stderr).toContain(fingerprintLine);
    expect(rescanned.stdout).toContain('1 key: ');
    expect((await knownHostsOf(id))?.trim()).toBe(knownHostsLine);
  });

  it('refuses what it cannot scan, saying why, and creates no trigger', async () => {
    const before = await triggerCount();
    const silentPort = (silent.address() as AddressInfo).port;
    const refusals: Array<{ args: string[]; env?: Record<string, string>; says: string }> = [
      {
        args: customGitTriggerArgs('acme/app', cloneUrl, '--scan-host-keys', '--known-hosts', 'known_hosts'),
        says: "'--scan-host-keys' cannot be used with option '--known-hosts",
      },
      {
        args: customGitTriggerArgs('acme/app', 'https://git.example.com/acme/app.git', '--scan-host-keys'),
        says: 'https://git.example.com/acme/app.git: it is not an SSH clone URL',
      },
      {
        args: customGitTriggerArgs('acme/app', cloneUrl, '--scan-host-keys'),
        env: { PATH: dir },
        says: 'needs ssh-keyscan (OpenSSH) on PATH: install it (Debian: apt-get install openssh-client)',
      },
      {
        args: customGitTriggerArgs(
          'acme/app',
          `ssh://git@127.0.0.1:${silentPort}/app.git`,
          '--scan-host-keys',
        ),
        says: `no host key answered from 127.0.0.1 port ${silentPort}`,
      },
    ];
    for (const { args, env, says } of refusals) {
      const refused = await gateway.root.run(args, env ? { env } : {});
      expect(refused.code, refused.stderr).not.toBe(0);
      expect(refused.stderr).toContain(says);
    }
    expect(await triggerCount()).toBe(before);
  });

  it('refuses known-hosts with both a file and --scan, or neither', async () => {
    const { id } = await gateway.root.json<{ id: string }>(customGitTriggerArgs('acme/app', cloneUrl));
    for (const args of [
      ['trigger', 'known-hosts', id, 'none', '--scan'],
      ['trigger', 'known-hosts', id],
    ]) {
      const refused = await gateway.root.run(args);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('give the known_hosts file, none, or --scan: one of them');
    }
  });
});
