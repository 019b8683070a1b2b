import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloneSecrets } from '../../src/triggers/trigger-store.ts';
import { CheckoutError, checkoutCommit } from '../../src/builder/git-checkout.ts';
import { SecretMasker } from '../../src/builder/output/secret-masker.ts';
import { commandLines, watchCommandLines } from '../helpers/command-lines.ts';
import { sshKeyPair, startGitHttpServer, startGitSshServer } from '../helpers/git-servers.ts';
import { GitRepository } from './git-fixtures.ts';
import { LineRecorder } from './fixtures.ts';

describe('checkoutCommit with a local bare repository', () => {
  let dir: string;
  let repository: GitRepository;
  let first: string;
  let second: string;
  let checkouts = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-checkout-'));
    repository = await GitRepository.create(dir, 'app');
    first = await repository.commit({ 'version.txt': 'one\n' });
    second = await repository.commit({ 'version.txt': 'two\n' });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const checkout = (overrides: { ref?: string | null; commit?: string | null; url?: string }) => {
    const lines = new LineRecorder();
    const target = join(dir, `checkout-${++checkouts}`);
    const done = checkoutCommit({
      dir: target,
      url: overrides.url ?? repository.bare,
      ref: overrides.ref ?? null,
      commit: overrides.commit ?? null,
      credentials: { token: 'clone-token-123' },
      masker: new SecretMasker(['clone-token-123']),
      onLine: lines.onLine,
    });
    return { done, target, lines };
  };

  it('checks out exactly the commit asked for, even when the branch has moved on', async () => {
    const { done, target, lines } = checkout({ ref: 'refs/heads/main', commit: first });
    expect(await done).toBe(first);
    expect(await readFile(join(target, 'version.txt'), 'utf8')).toBe('one\n');
    expect(lines.texts).toContain(`Checked out ${first} (refs/heads/main)`);
    expect(lines.texts.join('\n')).not.toContain('clone-token-123');
  });

  it('resolves a ref to the commit it points to', async () => {
    const { done, target } = checkout({ ref: 'refs/heads/main' });
    expect(await done).toBe(second);
    expect(await readFile(join(target, 'version.txt'), 'utf8')).toBe('two\n');
  });

  it('fails clearly on a commit the repository does not have', async () => {
    const { done } = checkout({ commit: 'f'.repeat(40) });
    await expect(done).rejects.toThrow(/clone failed/);
  });

  it('refuses what is not a full commit id', async () => {
    const { done } = checkout({ commit: first.slice(0, 7) });
    await expect(done).rejects.toBeInstanceOf(CheckoutError);
  });

  it('refuses transports that run commands', async () => {
    const { done } = checkout({ url: 'ext::sh -c touch% /tmp/pwned', ref: 'refs/heads/main' });
    await expect(done).rejects.toThrow(/clone failed/);
  });
});

describe('checkoutCommit with clone credentials', () => {
  let dir: string;
  let repository: GitRepository;
  let commit: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-checkout-credentials-'));
    repository = await GitRepository.create(dir, 'private');
    commit = await repository.commit({ 'secret-sauce.txt': 'tomatoes\n' });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const checkout = (url: string, credentials: CloneSecrets, env: NodeJS.ProcessEnv = process.env) =>
    checkoutCommit({
      dir: join(dir, `checkout-${Object.keys(credentials).join('-')}`),
      url,
      ref: 'refs/heads/main',
      commit,
      credentials,
      masker: new SecretMasker([]),
      onLine: () => {},
      env,
    });

  it('sends the token over HTTPS without putting it on any command line', async () => {
    const token = 'glpat-checkout-token-5f0e2a';
    /** Every process's command line, read while the server held one of the clone's requests. */
    const duringClone: string[][] = [];
    const https = await startGitHttpServer({
      root: dir,
      user: 'ci-reader',
      token,
      onRequest: () => void duringClone.push(...commandLines()),
    });
    const url = https.url(repository.bare);
    try {
      const env = { ...process.env, GIT_SSL_CAINFO: https.certificateFile };
      expect(await checkout(url, { token, username: 'ci-reader' }, env)).toBe(commit);
      expect(https.requests).toContainEqual(expect.objectContaining({ user: 'ci-reader', status: 200 }));
    } finally {
      await https.stop();
    }
    // git was among the processes read, waiting for the server's answer.
    expect(duringClone.some((args) => args.includes(url))).toBe(true);
    const basic = Buffer.from(`ci-reader:${token}`).toString('base64');
    for (const secret of [token, basic]) {
      expect(duringClone.filter((args) => args.join(' ').includes(secret))).toEqual([]);
    }
  });

  it('hands the deploy key to ssh in a file, not on its command line', async () => {
    const key = await sshKeyPair(dir, 'deploy');
    const sshd = await startGitSshServer(join(dir, 'sshd'), [key.publicKey]);
    const watch = watchCommandLines();
    try {
      expect(await checkout(sshd.url(repository.bare), { deployKey: key.privateKey })).toBe(commit);
    } finally {
      await watch.stop();
      await sshd.stop();
    }
    const seen = await watch.stop();
    expect(seen.some((args) => args[0] === 'ssh' && args.includes('IdentitiesOnly=yes'))).toBe(true);
    const keyLines = key.privateKey.split('\n').filter((line) => line.length >= 16);
    expect(seen.filter((args) => keyLines.some((line) => args.join(' ').includes(line)))).toEqual([]);
  });
});
