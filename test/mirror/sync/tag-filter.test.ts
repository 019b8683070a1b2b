import { describe, expect, it } from 'vitest';
import {
  exactTagGlob,
  parseTagFilter,
  selectTags,
  tagVersion,
  type TagFilterInput,
} from '../../../src/mirror/sync/tag-filter.ts';

/** Tags as Docker Hub's nginx has them: versions, partial versions, variants, channels and a release candidate. */
const nginx = [
  '1.26',
  '1.26.2',
  '1.26.2-alpine',
  '1.27',
  '1.27.2',
  '1.27.3',
  '1.27.3-alpine',
  '1.27.3-perl',
  '1.28.0-rc.1',
  'mainline',
  'mainline-alpine',
  'stable',
  'stable-alpine',
  'latest',
  'alpine',
];

function selected(filter: TagFilterInput, tags: readonly string[] = nginx): string[] {
  return selectTags(parseTagFilter(filter), tags)
    .filter((decision) => decision.selected)
    .map(({ tag }) => tag);
}

function reasonFor(filter: TagFilterInput, tag: string, tags: readonly string[] = nginx): string | undefined {
  const decision = selectTags(parseTagFilter(filter), tags).find((d) => d.tag === tag);
  if (!decision) throw new Error(`${tag} is not in the tag list`);
  return decision.selected ? undefined : decision.reason;
}

function rejection(filter: unknown): string {
  try {
    parseTagFilter(filter);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the filter to be rejected');
}

describe('a tag filter', () => {
  it('without criteria selects every tag, and decides on every tag in the upstream order', () => {
    const decisions = selectTags(parseTagFilter({}), nginx);
    expect(decisions.map(({ tag }) => tag)).toEqual(nginx);
    expect(decisions.every((decision) => decision.selected)).toBe(true);
  });

  it('is stored with its defaults filled in', () => {
    expect(parseTagFilter({ include: 'latest' })).toEqual({
      include: ['latest'],
      exclude: [],
      regex: [],
      includePrerelease: false,
    });
  });
});

describe('include and exclude globs', () => {
  it("take Quay's comma-separated lists as they are", () => {
    expect(selected({ include: 'v1.*,latest' }, ['v1.2', 'v1.2.3-rc.1', 'v2.0', 'latest', 'stable'])).toEqual(
      ['v1.2', 'v1.2.3-rc.1', 'latest'],
    );
    expect(selected({ include: ['1.26.*, stable'] })).toEqual(['1.26.2', '1.26.2-alpine', 'stable']);
  });

  it('match dots and dashes with *, over the whole tag', () => {
    expect(selected({ include: '1.27*' })).toEqual([
      '1.27',
      '1.27.2',
      '1.27.3',
      '1.27.3-alpine',
      '1.27.3-perl',
    ]);
    expect(selected({ include: '*-alpine' })).toEqual([
      '1.26.2-alpine',
      '1.27.3-alpine',
      'mainline-alpine',
      'stable-alpine',
    ]);
    expect(selected({ include: 'alpine' })).toEqual(['alpine']);
  });

  it('keep a comma inside braces as part of the glob', () => {
    expect(selected({ include: '1.{26,27},latest' })).toEqual(['1.26', '1.27', 'latest']);
  });

  it('are case-sensitive, as tags are', () => {
    expect(selected({ include: 'Latest' })).toEqual([]);
  });

  it('let a tag through when it matches any include glob, and say which globs it missed', () => {
    expect(reasonFor({ include: '1.27.*' }, 'latest')).toBe('does not match "1.27.*"');
    expect(reasonFor({ include: '1.27.*,stable' }, 'latest')).toBe('matches none of "1.27.*", "stable"');
  });

  it('leave out what any exclude glob matches, even when an include glob matches too', () => {
    const filter = { include: '1.27*', exclude: ['*-alpine', '*-perl'] };
    expect(selected(filter)).toEqual(['1.27', '1.27.2', '1.27.3']);
    expect(reasonFor(filter, '1.27.3-perl')).toBe('excluded by "*-perl"');
    expect(reasonFor({ include: '*', exclude: '*-rc*' }, '1.28.0-rc.1')).toBe('excluded by "*-rc*"');
  });

  it('can leave out with an extglob negation too', () => {
    expect(selected({ include: '!(*-*)' })).toEqual([
      '1.26',
      '1.26.2',
      '1.27',
      '1.27.2',
      '1.27.3',
      'mainline',
      'stable',
      'latest',
      'alpine',
    ]);
  });

  it('select exactly the listed tags when built from a tag list', () => {
    const filter = { include: ['1.27', 'latest'].map(exactTagGlob) };
    expect(selected(filter)).toEqual(['1.27', 'latest']);
  });
});

describe('regular expressions', () => {
  it('select tags matching any of them', () => {
    expect(selected({ regex: ['^1\\.27\\.\\d+$', '^stable$'] })).toEqual(['1.27.2', '1.27.3', 'stable']);
  });

  it('are unanchored, as in skopeo: ^ and $ make them match whole tags', () => {
    expect(selected({ regex: ['alpine'] })).toEqual([
      '1.26.2-alpine',
      '1.27.3-alpine',
      'mainline-alpine',
      'stable-alpine',
      'alpine',
    ]);
  });

  it('name the expressions a rejected tag missed', () => {
    expect(reasonFor({ regex: ['^1\\.27\\.'] }, 'latest')).toBe('does not match /^1\\.27\\./');
    expect(reasonFor({ regex: ['^1\\.27\\.', '^stable$'] }, 'latest')).toBe(
      'matches none of /^1\\.27\\./, /^stable$/',
    );
  });
});

describe('a semver range', () => {
  it('selects released versions in range, partial versions read as .0', () => {
    expect(selected({ semver: '>=1.27 <2' })).toEqual(['1.27', '1.27.2', '1.27.3']);
    expect(selected({ semver: '~1.26' })).toEqual(['1.26', '1.26.2']);
  });

  it('explains each tag it leaves out', () => {
    const filter = { semver: '>=1.27 <2' };
    expect(reasonFor(filter, '1.26.2')).toBe('outside semver range ">=1.27 <2"');
    expect(reasonFor(filter, 'latest')).toBe('not a version, so outside semver range ">=1.27 <2"');
    expect(reasonFor(filter, '1.28.0-rc.1')).toBe(
      'pre-release (set includePrerelease to mirror pre-releases in ">=1.27 <2")',
    );
  });

  it('counts variant tags such as 1.27.3-alpine as pre-releases, and takes them with includePrerelease', () => {
    expect(reasonFor({ semver: '>=1.27 <2' }, '1.27.3-alpine')).toMatch(/^pre-release/);
    expect(selected({ semver: '>=1.27 <2', includePrerelease: true })).toEqual([
      '1.27',
      '1.27.2',
      '1.27.3',
      '1.27.3-alpine',
      '1.27.3-perl',
      '1.28.0-rc.1',
    ]);
  });

  it('reads tags with a leading v', () => {
    const tags = ['v1.2.0', 'v1.3', 'v2.0.0-beta.1', 'v2.0.0', 'v2-latest'];
    expect(selected({ semver: '^1' }, tags)).toEqual(['v1.2.0', 'v1.3']);
    expect(selected({ semver: '>=2' }, tags)).toEqual(['v2.0.0']);
  });

  it("takes skopeo's comma between conditions and spaces after operators", () => {
    expect(selected({ semver: '>= 1.27, < 1.27.3' })).toEqual(['1.27', '1.27.2']);
  });

  it('takes alternatives', () => {
    expect(selected({ semver: '1.26.2 || >=1.27.3 <1.28' })).toEqual(['1.26.2', '1.27.3']);
  });
});

describe('newest N', () => {
  it('keeps the N highest released versions and nothing else', () => {
    expect(selected({ newest: 2 })).toEqual(['1.27.2', '1.27.3']);
    expect(reasonFor({ newest: 2 }, '1.27')).toBe('older than the newest 2');
    expect(reasonFor({ newest: 2 }, 'latest')).toBe('not a version, so not ranked for the newest 2');
    expect(reasonFor({ newest: 2 }, '1.28.0-rc.1')).toBe(
      'pre-release, not ranked for the newest 2 (set includePrerelease to rank pre-releases)',
    );
  });

  it('ranks pre-releases too with includePrerelease, each below its own release', () => {
    expect(selected({ newest: 2, includePrerelease: true })).toEqual(['1.27.3', '1.28.0-rc.1']);
    const tags = ['2.0.0-rc.1', '2.0.0-rc.2', '2.0.0', '1.9.9'];
    expect(selected({ newest: 2, includePrerelease: true }, tags)).toEqual(['2.0.0-rc.2', '2.0.0']);
  });

  it('ranks by version, not by text', () => {
    const tags = ['1.9.0', '1.10.0', '1.2.0', 'v1.11'];
    expect(selected({ newest: 2 }, tags)).toEqual(['1.10.0', 'v1.11']);
  });

  it('orders equal versions such as 1.27 and v1.27.0 by tag name, so every run picks the same tags', () => {
    expect(selected({ newest: 1 }, ['v1.27.0', '1.26.9', '1.27'])).toEqual(['1.27']);
    expect(selected({ newest: 1 }, ['1.27', '1.26.9', 'v1.27.0'])).toEqual(['1.27']);
  });

  it('ranks only the tags that pass the other criteria', () => {
    expect(selected({ include: '*-alpine', includePrerelease: true, newest: 1 })).toEqual(['1.27.3-alpine']);
    expect(selected({ semver: '<1.27', newest: 1 })).toEqual(['1.26.2']);
  });

  it('selects fewer than N when fewer versions match', () => {
    expect(selected({ include: '1.26*', newest: 10 })).toEqual(['1.26', '1.26.2']);
  });
});

describe('every criterion together', () => {
  it('selects what passes all of them, and names the first one each other tag fails', () => {
    const filter: TagFilterInput = {
      include: '1.*',
      exclude: '*-perl',
      regex: ['^1\\.2[67]'],
      semver: '>=1.26.1 <1.28',
      includePrerelease: true,
      newest: 2,
    };
    expect(selected(filter)).toEqual(['1.27.3', '1.27.3-alpine']);
    expect(reasonFor(filter, '1.27.3-perl')).toBe('excluded by "*-perl"');
    expect(reasonFor(filter, 'latest')).toBe('does not match "1.*"');
    expect(reasonFor(filter, '1.28.0-rc.1')).toBe('does not match /^1\\.2[67]/');
    expect(reasonFor(filter, '1.26')).toBe('outside semver range ">=1.26.1 <1.28"');
    expect(reasonFor(filter, '1.27.2')).toBe('older than the newest 2');
  });
});

describe('reading a tag as a version', () => {
  it('allows a leading v and partial versions', () => {
    expect(tagVersion('1.27')?.version).toBe('1.27.0');
    expect(tagVersion('v2')?.version).toBe('2.0.0');
    expect(tagVersion('22.04')?.version).toBe('22.4.0');
    expect(tagVersion('1.27.3-alpine')?.prerelease).toEqual(['alpine']);
  });

  it('refuses what is not a version', () => {
    for (const tag of ['latest', 'mainline-alpine', '1.2.3.4', 'v', '1.2.3_build', '1.2.3-01']) {
      expect(tagVersion(tag), tag).toBeNull();
    }
  });
});

describe('a bad filter definition', () => {
  it('is refused with what is wrong and where', () => {
    expect(rejection({ regex: ['^v1\\.', '^(1\\.2'] })).toBe(
      'invalid tag filter: regex[1]: "^(1\\.2" is not a valid regular expression: Unterminated group',
    );
    expect(rejection({ semver: '>=1.24 <<2' })).toBe(
      'invalid tag filter: semver: ">=1.24 <<2" is not a semver range; write conditions such as ">=1.24 <2", "~1.27" or "^1 || ^2"',
    );
    expect(rejection({ semver: '>=1.2 != 1.2.3' })).toBe(
      'invalid tag filter: semver: ">=1.2 != 1.2.3": "!=" is not supported in semver ranges; leave single versions out with exclude globs',
    );
  });

  it('refuses newest below 1 or not a whole number', () => {
    for (const newest of [0, -1, 2.5, '3']) {
      expect(rejection({ newest })).toBe(
        'invalid tag filter: newest: expected a whole number of at least 1, e.g. 5',
      );
    }
  });

  it('refuses globs that can never match a tag, saying what was probably meant', () => {
    expect(rejection({ include: '!latest' })).toBe(
      'invalid tag filter: include[0]: "!latest" starts with "!": to leave tags out, list "latest" under exclude',
    );
    expect(rejection({ exclude: ['library/nginx:*'] })).toBe(
      'invalid tag filter: exclude[0]: "library/nginx:*" contains "/", which no tag has (tags are letters, digits, ".", "_" and "-")',
    );
  });

  it('lists every problem at once', () => {
    expect(rejection({ newest: 0, regex: ['('] })).toBe(
      'invalid tag filter: regex[0]: "(" is not a valid regular expression: Unterminated group; ' +
        'newest: expected a whole number of at least 1, e.g. 5',
    );
  });

  it('refuses keys it does not know, naming the ones it does', () => {
    expect(rejection({ tags: ['latest'] })).toBe(
      'invalid tag filter: unknown key "tags"; a filter has include, exclude, regex, semver, includePrerelease and newest',
    );
    expect(rejection('latest')).toBe(
      'invalid tag filter: expected a filter with include, exclude, regex, semver, includePrerelease and newest',
    );
  });

  it('is an invalid-request error for the API', () => {
    expect(() => parseTagFilter({ newest: 0 })).toThrow(expect.objectContaining({ code: 'SLW_ERR_INVALID' }));
  });
});
