import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutError, checkoutCommit } from '../../src/builder/git-checkout.ts';
import { SecretMasker } from '../../src/builder/output/secret-masker.ts';
import type { CloneSecrets } from '../../src/triggers/trigger-store.ts';
import { sshKeyPair, startGitSshServer, type GitSshServer } from '../helpers/git-servers.ts';
import { requireTool, run } from '../helpers/tools.ts';
import { LineRecorder } from './fixtures.ts';
import { GitRepository } from './git-fixtures.ts';

/** Checkouts over SSH from a throwaway sshd, with and without the trigger's known hosts. */
describe('checkoutCommit over SSH checks the host key against the known hosts', () => {
  let dir: string;
  let repository: GitRepository;
  let commit: string;
  let sshd: GitSshServer;
  let deployKey: { privateKey: string; publicKey: string };
  /** How known_hosts names the server: [127.0.0.1]:port. */
  let hostName: string;
  let port: string;
  let checkouts = 0;

  beforeAll(async () => {
    requireTool('ssh', 'openssh-client');
    dir = await mkdtemp(join(tmpdir(), 'slipway-checkout-host-keys-'));
    repository = await GitRepository.create(dir, 'private');
    commit = await repository.commit({ 'recipe.txt': 'the secret sauce\n' });
    deployKey = await sshKeyPair(dir, 'deploy');
    sshd = await startGitSshServer(join(dir, 'sshd'), [deployKey.publicKey]);
    port = new URL(sshd.url(repository.bare)).port;
    hostName = `[127.0.0.1]:${port}`;
  });
  afterAll(async () => {
    await sshd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const checkout = (credentials: CloneSecrets) => {
    const lines = new LineRecorder();
    const target = join(dir, `checkout-${++checkouts}`);
    const done = checkoutCommit({
      dir: target,
      url: sshd.url(repository.bare),
      ref: 'refs/heads/main',
      commit,
      credentials: { deployKey: deployKey.privateKey, ...credentials },
      masker: new SecretMasker([]),
      onLine: lines.onLine,
    });
    return { done, target, lines };
  };

  const acceptedConnections = () => sshd.log().match(/Accepted publickey/g)?.length ?? 0;

  it('clones when the server presents a key of the known hosts, with no warning', async () => {
    const knownHosts = `# the test server\n${hostName} ${sshd.hostPublicKey}\n`;
    const { done, target, lines } = checkout({ knownHosts });

    expect(await done).toBe(commit);
    expect(await readFile(join(target, 'recipe.txt'), 'utf8')).toBe('the secret sauce\n');
    expect(lines.texts.join('\n')).not.toMatch(/was not checked|Permanently added/);
  });

  it('clones when the known hosts name the server by its hashed name', async () => {
    const hashed = await hashedKnownHostsLine(dir, `${hostName} ${sshd.hostPublicKey}`);
    expect(hashed).toMatch(/^\|1\|/);
    const { done } = checkout({ knownHosts: hashed });

    expect(await done).toBe(commit);
  });

  it('refuses a server whose key is not the known one, before authenticating and cloning anything', async () => {
    const impostor = await sshKeyPair(dir, `impostor-${checkouts}`);
    const otherKey = impostor.publicKey.split(' ').slice(0, 2).join(' ');
    const accepted = acceptedConnections();
    const { done, target } = checkout({ knownHosts: `${hostName} ${otherKey}` });

    const error = await done.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CheckoutError);
    expect((error as CheckoutError).message).toContain(
      `the host key of ${hostName} does not match the trigger's known hosts`,
    );
    expect((error as CheckoutError).message).toContain(`it presented ${fingerprintOf(sshd.hostPublicKey)}`);
    expect((error as CheckoutError).message).toContain(`ssh-keyscan -p ${port} 127.0.0.1`);
    // ssh stopped at the host key: the deploy key was never offered, nothing was fetched.
    expect(acceptedConnections()).toBe(accepted);
    expect(await readdir(target)).toEqual(['.git']);
    expect(await readdir(join(target, '.git', 'refs', 'slipway')).catch(() => [])).toEqual([]);
  });

  it('refuses a server the known hosts hold no key for', async () => {
    const { done } = checkout({ knownHosts: `[127.0.0.1]:1 ${sshd.hostPublicKey}` });

    await expect(done).rejects.toThrow(
      `the host key of ${hostName} does not match the trigger's known hosts`,
    );
  });

  it('without known hosts accepts the key, says once that it was not checked, and not "Permanently added"', async () => {
    const { done, target, lines } = checkout({});

    expect(await done).toBe(commit);
    expect(await readFile(join(target, 'recipe.txt'), 'utf8')).toBe('the secret sauce\n');
    const warnings = lines.texts.filter((text) => text.includes('was not checked'));
    expect(warnings).toEqual([
      `warning: the host key of ${hostName} was not checked: set knownHosts on the trigger, e.g. from \`ssh-keyscan -p ${port} 127.0.0.1\``,
    ]);
    expect(lines.texts.join('\n')).not.toContain('Permanently added');
  });
});

/** OpenSSH's SHA256 fingerprint of a public key (`ssh-ed25519 AAAA…`). */
function fingerprintOf(publicKey: string): string {
  const blob = Buffer.from(publicKey.split(' ')[1]!, 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The line with its host hashed, as `ssh-keygen -H` writes it. */
async function hashedKnownHostsLine(dir: string, line: string): Promise<string> {
  const file = join(dir, 'known_hosts_to_hash');
  await writeFile(file, `${line}\n`);
  await run(requireTool('ssh-keygen', 'openssh-client'), ['-q', '-H', '-f', file]);
  return (await readFile(file, 'utf8')).trim();
}
