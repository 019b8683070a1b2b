import argon2 from 'argon2';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * OWASP's argon2id baseline (19 MiB, 2 passes): each hash holds that much memory for ~20 ms, so
 * a burst of logins cannot take the gateway's memory with it.
 */
const argon2Options = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, argon2Options);
}

/** A hash of nothing anyone knows: verified against when the user does not exist, so timing tells nothing. */
let decoyHash: Promise<string> | undefined;

export async function verifyPassword(hash: string | null, password: string): Promise<boolean> {
  const target = hash ?? (await (decoyHash ??= hashPassword(randomBytes(16).toString('hex'))));
  try {
    return (await argon2.verify(target, password)) && hash !== null;
  } catch {
    return false;
  }
}

export const minimumPasswordLength = 8;

/**
 * Tokens are `slw_<selector>_<verifier>`: the selector finds the row, the verifier is compared in
 * constant time against the SHA-256 kept in its place, so a leaked table does not leak tokens.
 */
export interface NewToken {
  token: string;
  selector: string;
  verifierHash: Buffer;
}

const tokenPattern = /^slw_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

export function newToken(): NewToken {
  const selector = randomAlphanumeric(16);
  const verifier = randomBytes(32).toString('base64url');
  return { token: `slw_${selector}_${verifier}`, selector, verifierHash: sha256(verifier) };
}

export function parseToken(value: string): { selector: string; verifier: string } | null {
  const match = tokenPattern.exec(value);
  return match ? { selector: match[1]!, verifier: match[2]! } : null;
}

export function verifierMatches(expectedHash: Buffer, verifier: string): boolean {
  const actual = sha256(verifier);
  return actual.length === expectedHash.length && timingSafeEqual(actual, expectedHash);
}

/** Whether `given` is `expected`, in time that tells nothing of how much of it matched (or its length). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

export function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function randomAlphanumeric(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length * 2);
  let out = '';
  // 62 does not divide 256: bytes of 248 and above are skipped so every character is equally likely.
  for (const byte of bytes) {
    if (byte < 248) out += alphabet[byte % 62];
    if (out.length === length) return out;
  }
  return out + randomAlphanumeric(length - out.length);
}
