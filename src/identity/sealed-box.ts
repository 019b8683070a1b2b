import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError } from '../errors.ts';

/**
 * Secrets Slipway must use again (webhook secrets and URLs, upstream credentials, deploy keys) are
 * stored sealed with AES-256-GCM: `v1.<key id>.<base64url iv|tag|ciphertext>`. The key id names the
 * key, so a sealed value from another installation fails with a clear message rather than garbage.
 */
export class SealedBox {
  readonly #key: Buffer;
  readonly #keyId: string;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new ConfigError('the secret-sealing key must be 32 bytes');
    this.#key = key;
    this.#keyId = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1.${this.#keyId}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  open(sealed: string): string {
    const [version, keyId, data] = sealed.split('.');
    if (version !== 'v1' || !data) throw new Error('not a sealed secret');
    if (keyId !== this.#keyId) {
      throw new Error(
        `sealed with key ${keyId}, not this installation's ${this.#keyId}: restore the sealing key or set the secret again`,
      );
    }
    const bytes = Buffer.from(data, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
  }
}

export const sealingKeyFile = join('keys', 'sealing.key');

/**
 * The configured key (base64 of 32 bytes; every replica needs the same one), else the data
 * directory's, generated on first start.
 */
export async function loadSealedBox(dataDir: string, configured?: string): Promise<SealedBox> {
  if (configured) {
    const key = Buffer.from(configured, 'base64');
    if (key.length !== 32) {
      throw new ConfigError(
        'secretKey (SLIPWAY_SECRET_KEY) must be 32 random bytes in base64, e.g. from `openssl rand -base64 32`',
      );
    }
    return new SealedBox(key);
  }
  const file = join(dataDir, sealingKeyFile);
  try {
    return new SealedBox(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  // Written whole under a unique name, then linked into place: a crash leaves no half key, and
  // of two processes starting at once, the first link wins and both use its key.
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  try {
    await link(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(temporary);
  }
  return new SealedBox(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64'));
}
