import { createHash, type Hash } from 'node:crypto';
import { OciError } from './errors.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';

/** A validated `algorithm:hex` digest. Construct only through `parseDigest` or `computeDigest`. */
export type Digest = string & { readonly __brand: 'Digest' };

const encodedLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const digestPattern = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export function isSupportedAlgorithm(algorithm: string): algorithm is DigestAlgorithm {
  return algorithm === 'sha256' || algorithm === 'sha512';
}

/** Parses a digest string; anything malformed or of an unsupported algorithm is DIGEST_INVALID. */
export function parseDigest(value: string): Digest {
  const match = digestPattern.exec(value);
  if (!match)
    throw new OciError('DIGEST_INVALID', `invalid digest "${truncate(value)}": expected algorithm:hex`);
  const [, algorithm, encoded] = match as unknown as [string, string, string];
  if (!isSupportedAlgorithm(algorithm)) {
    throw new OciError(
      'DIGEST_INVALID',
      `unsupported digest algorithm "${algorithm}": use sha256 or sha512`,
      {
        detail: { digest: value },
      },
    );
  }
  if (encoded.length !== encodedLength[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
    throw new OciError(
      'DIGEST_INVALID',
      `invalid ${algorithm} digest: expected ${encodedLength[algorithm]} lowercase hex characters`,
      { detail: { digest: truncate(value) } },
    );
  }
  return value as Digest;
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function computeDigest(content: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(content).digest('hex')}` as Digest;
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function finishDigest(hash: Hash, algorithm: DigestAlgorithm): Digest {
  return `${algorithm}:${hash.digest('hex')}` as Digest;
}

function truncate(value: string): string {
  return value.length > 160 ? `${value.slice(0, 160)}…` : value;
}
