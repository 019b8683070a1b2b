import { describe, expect, it } from 'vitest';
import { OciError } from '../../src/registry/errors.ts';
import { parseReference, parseRepositoryName, parseTag } from '../../src/registry/names.ts';

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return error instanceof OciError ? error.code : 'not an OciError';
  }
  return undefined;
}

describe('repository names', () => {
  it.each(['library/nginx', 'a', 'team/app', 'a.b_c__d-e---f/g', 'x/y/z/w', 'abc123'])(
    'accepts %s',
    (name) => {
      expect(parseRepositoryName(name)).toBe(name);
    },
  );

  it.each([
    ['uppercase', 'Library/nginx'],
    ['empty component', 'team//app'],
    ['leading slash', '/team/app'],
    ['trailing slash', 'team/app/'],
    ['dot-dot traversal', 'team/../etc'],
    ['encoded slash', 'team%2Fapp'],
    ['leading separator', '-team/app'],
    ['triple underscore', 'a___b'],
    ['space', 'team app'],
    ['empty', ''],
    ['too long', 'a'.repeat(256)],
  ])('refuses %s with NAME_INVALID', (_why, name) => {
    expect(codeOf(() => parseRepositoryName(name))).toBe('NAME_INVALID');
  });
});

describe('tags and references', () => {
  it('accepts tags up to 128 characters', () => {
    expect(parseTag('v1.2.3_rc-1')).toBe('v1.2.3_rc-1');
    expect(parseTag('a'.repeat(128))).toHaveLength(128);
  });

  it.each(['.hidden', '-dash', 'a'.repeat(129), 'has/slash', 'sp ace', ''])('refuses tag %j', (tag) => {
    expect(codeOf(() => parseTag(tag))).toBe('TAG_INVALID');
  });

  it('reads a reference with a colon as a digest', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseReference(digest)).toEqual({ kind: 'digest', digest });
    expect(parseReference('latest')).toEqual({ kind: 'tag', tag: 'latest' });
    expect(codeOf(() => parseReference('sha256:short'))).toBe('DIGEST_INVALID');
  });
});
