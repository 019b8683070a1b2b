import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSealedBox, SealedBox, sealingKeyFile } from '../../src/identity/sealed-box.ts';

describe('sealed secrets', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('opens what it sealed, and never shows the plaintext in the sealed form', () => {
    const box = new SealedBox(randomBytes(32));
    const sealed = box.seal('whsec_very-secret');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{8}\./);
    expect(sealed).not.toContain('very-secret');
    expect(box.seal('whsec_very-secret')).not.toBe(sealed);
    expect(box.open(sealed)).toBe('whsec_very-secret');
  });

  it('refuses a tampered value and one sealed by another key', () => {
    const box = new SealedBox(randomBytes(32));
    const sealed = box.seal('https://hooks.slack.com/services/T/B/x');
    const last = sealed.at(-2) === 'A' ? 'B' : 'A';
    expect(() => box.open(`${sealed.slice(0, -2)}${last}${sealed.at(-1)}`)).toThrow();
    expect(() => new SealedBox(randomBytes(32)).open(sealed)).toThrow(/restore the sealing key/);
  });

  it('generates a key in the data directory once, readable by its owner only, and keeps using it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-seal-'));
    dirs.push(dir);
    const [a, b] = await Promise.all([loadSealedBox(dir), loadSealedBox(dir)]);
    const sealed = a.seal('x');
    expect(b.open(sealed)).toBe('x');
    expect((await loadSealedBox(dir)).open(sealed)).toBe('x');
    expect((await stat(join(dir, sealingKeyFile))).mode & 0o077).toBe(0);
    expect(Buffer.from((await readFile(join(dir, sealingKeyFile), 'utf8')).trim(), 'base64')).toHaveLength(
      32,
    );
  });

  it('takes a configured key, and refuses one that is not 32 bytes of base64', async () => {
    const key = randomBytes(32).toString('base64');
    const dir = await mkdtemp(join(tmpdir(), 'slipway-seal-'));
    dirs.push(dir);
    const sealed = (await loadSealedBox(dir, key)).seal('y');
    expect((await loadSealedBox(join(dir, 'elsewhere'), key)).open(sealed)).toBe('y');
    await expect(loadSealedBox(dir, 'c2hvcnQ=')).rejects.toThrow(/32 random bytes in base64/);
  });
});
