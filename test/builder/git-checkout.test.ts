import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutError, checkoutCommit } from '../../src/builder/git-checkout.ts';
import { SecretMasker } from '../../src/builder/output/secret-masker.ts';
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
