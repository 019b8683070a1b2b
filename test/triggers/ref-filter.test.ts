import { describe, expect, it } from 'vitest';
import { parsePushedRef } from '../../src/triggers/push-event.ts';
import { compileRefFilter, refFilterSubject, refSelected } from '../../src/triggers/ref-filter.ts';

const pushedRefs = [
  'refs/heads/main',
  'refs/heads/main-old',
  'refs/heads/develop',
  'refs/heads/feature/login',
  'refs/heads/release/2.4',
  'refs/tags/v2.4.0',
  'refs/tags/v2.4.1-rc.1',
  'refs/tags/nightly-20261202',
];

function built(filter: string): string[] {
  const compiled = compileRefFilter(filter);
  return pushedRefs.filter((full) => compiled.matches(parsePushedRef(full)!));
}

function rejection(filter: string): string {
  try {
    compileRefFilter(filter);
  } catch (error) {
    expect(error).toMatchObject({ status: 400, code: 'SLW_ERR_INVALID' });
    return (error as Error).message;
  }
  throw new Error('expected the filter to be refused');
}

describe('a ref filter', () => {
  it('is matched against heads/<branch> and tags/<tag>', () => {
    expect(refFilterSubject(parsePushedRef('refs/heads/feature/login')!)).toBe('heads/feature/login');
    expect(refFilterSubject(parsePushedRef('refs/tags/v2.4.0')!)).toBe('tags/v2.4.0');
  });

  it('must match the whole ref: heads/main builds main, not main-old', () => {
    expect(built('heads/main')).toEqual(['refs/heads/main']);
    expect(built('main')).toEqual([]);
  });

  it('selects families of branches and tags', () => {
    expect(built('heads/release/.*')).toEqual(['refs/heads/release/2.4']);
    expect(built(String.raw`tags/v\d+\.\d+\.\d+`)).toEqual(['refs/tags/v2.4.0']);
    expect(built('heads/(main|develop)|tags/.*')).toEqual([
      'refs/heads/main',
      'refs/heads/develop',
      'refs/tags/v2.4.0',
      'refs/tags/v2.4.1-rc.1',
      'refs/tags/nightly-20261202',
    ]);
  });

  it('matches the whole ref even when an earlier alternative is a prefix of it', () => {
    expect(built('heads/(main|main-old)')).toEqual(['refs/heads/main', 'refs/heads/main-old']);
  });

  it('is optional: a trigger without one builds every branch and tag', () => {
    expect(pushedRefs.every((full) => refSelected(undefined, parsePushedRef(full)!))).toBe(true);
    expect(refSelected(compileRefFilter('tags/.*'), parsePushedRef('refs/heads/main')!)).toBe(false);
  });

  it('refuses an invalid expression, saying why', () => {
    expect(rejection('heads/(main')).toBe(
      'ref filter "heads/(main" is not a valid regular expression: Unterminated group',
    );
    expect(rejection('heads/main)|(tags/.*')).toMatch(/is not a valid regular expression/);
    expect(rejection('')).toMatch(/not an empty string/);
  });

  it('refuses a filter written with the refs/ prefix, suggesting the form that works', () => {
    expect(rejection('refs/heads/main')).toBe(
      'ref filter "refs/heads/main": refs are matched without their "refs/" prefix; write "heads/main"',
    );
  });
});
