import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computeDigest, parseDigest } from '../../src/registry/digest.ts';
import { OciError } from '../../src/registry/errors.ts';

describe('digests', () => {
  it('computes sha256 and sha512 digests of content', () => {
    const content = Buffer.from('hello');
    expect(computeDigest(content)).toBe(`sha256:${createHash('sha256').update(content).digest('hex')}`);
    expect(computeDigest(content, 'sha512')).toBe(
      `sha512:${createHash('sha512').update(content).digest('hex')}`,
    );
  });

  it('parses well-formed digests of supported algorithms', () => {
    expect(parseDigest(`sha256:${'0'.repeat(64)}`)).toBe(`sha256:${'0'.repeat(64)}`);
    expect(parseDigest(`sha512:${'f'.repeat(128)}`)).toBe(`sha512:${'f'.repeat(128)}`);
  });

  it.each([
    ['no algorithm', 'a'.repeat(64)],
    ['wrong length', `sha256:${'a'.repeat(63)}`],
    ['uppercase hex', `sha256:${'A'.repeat(64)}`],
    ['unsupported algorithm', `md5:${'a'.repeat(32)}`],
    ['sha512 length for sha256', `sha256:${'a'.repeat(128)}`],
    ['path trick', `sha256:../../${'a'.repeat(58)}`],
  ])('refuses %s with DIGEST_INVALID and a clear message', (_why, value) => {
    try {
      parseDigest(value);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(OciError);
      expect((error as OciError).code).toBe('DIGEST_INVALID');
      expect((error as OciError).status).toBe(400);
      expect((error as OciError).message).toMatch(/digest/);
    }
  });
});
