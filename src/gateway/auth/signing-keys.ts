import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type CryptoKey,
  type JWK,
} from 'jose';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { ConfigError } from '../../errors.ts';

export type SigningAlgorithm = 'ES256' | 'RS256';

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * The keys registry tokens are signed with: the first signs, all of them verify, so after a rotation
 * tokens signed with an older key keep working until they expire.
 */
export interface SigningKeySet {
  signing: SigningKey;
  byKid: ReadonlyMap<string, SigningKey>;
}

/** Key files in the data directory are named `<unix-ms>.pem`; the newest signs. */
export const keyDirectoryName = join('auth', 'signing-keys');

/**
 * Loads the configured PEM files (first signs), or else the data directory's keys, generating an
 * ES256 key there on first start.
 */
export async function loadSigningKeys(
  dataDir: string,
  configured: readonly string[] = [],
): Promise<SigningKeySet> {
  const pems =
    configured.length > 0
      ? await Promise.all(configured.map((file) => readPem(file)))
      : await dataDirectoryKeys(dataDir);
  const keys = await Promise.all(pems.map(({ file, pem }) => importKey(pem, file)));
  return { signing: keys[0]!, byKid: new Map(keys.map((key) => [key.kid, key])) };
}

/** Writes a new ES256 key into the data directory; it signs from the next start on. */
export async function rotateSigningKey(dataDir: string): Promise<string> {
  const directory = join(dataDir, keyDirectoryName);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const file = join(directory, `${Date.now()}.pem`);
  await writeFile(`${file}.tmp`, await exportPKCS8(privateKey), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  return file;
}

async function dataDirectoryKeys(dataDir: string): Promise<Array<{ file: string; pem: string }>> {
  const directory = join(dataDir, keyDirectoryName);
  let names = await keyFiles(directory);
  if (names.length === 0) {
    await rotateSigningKey(dataDir);
    names = await keyFiles(directory);
  }
  return Promise.all(names.map((name) => readPem(join(directory, name))));
}

async function keyFiles(directory: string): Promise<string[]> {
  try {
    const names = (await readdir(directory)).filter((name) => /^\d+\.pem$/.test(name));
    return names.sort((a, b) => Number.parseInt(b, 10) - Number.parseInt(a, 10));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function readPem(file: string): Promise<{ file: string; pem: string }> {
  try {
    return { file, pem: await readFile(file, 'utf8') };
  } catch (error) {
    throw new ConfigError(`cannot read signing key ${file}: ${(error as Error).message}`);
  }
}

async function importKey(pem: string, file: string): Promise<SigningKey> {
  let alg: SigningAlgorithm;
  try {
    const type = createPrivateKey(pem).asymmetricKeyType;
    if (type === 'ec') alg = 'ES256';
    else if (type === 'rsa') alg = 'RS256';
    else throw new Error(`unsupported key type ${type}`);
  } catch (error) {
    throw new ConfigError(
      `signing key ${file} is not a PKCS#8 EC P-256 or RSA private key: ${(error as Error).message}`,
    );
  }
  const privateKey = await importPKCS8(pem, alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const publicJwk: JWK =
    alg === 'ES256'
      ? { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }
      : { kty: jwk.kty, n: jwk.n, e: jwk.e };
  const kid = await calculateJwkThumbprint(publicJwk);
  const publicKey = (await importJWK(publicJwk, alg)) as CryptoKey;
  return { kid, alg, privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}
