import { invalid } from '../errors.ts';
import type { PushedRef } from './push-event.ts';

/*
 * Which pushes a trigger builds: a regular expression over the ref without its `refs/` prefix, so
 * branches read `heads/<branch>` and tags `tags/<tag>`, as in Quay.
 *
 * The expression must match the WHOLE ref, as Quay requires: `heads/main` builds main but not
 * main-old, `heads/release/.*` builds every release branch, `tags/v\d+\.\d+\.\d+` builds release tags but
 * not v1.2.3-rc.1, and `heads/.*|tags/.*` builds everything. Whole-match means the expression is tried
 * as `^(?:expression)$`, with backtracking, so `heads/(main|main-next)` matches heads/main-next even
 * though its first alternative is a prefix of it. A trigger without a filter builds every branch and tag.
 * Expressions are JavaScript syntax (Quay's are Python's; the common subset is the same).
 */

/** Long enough for any real filter, short enough to keep matching cheap. */
const maxFilterLength = 1000;

export interface RefFilter {
  /** The expression as the user wrote it. */
  readonly source: string;
  matches(ref: PushedRef): boolean;
}

/** What a filter is matched against: `heads/main`, `tags/v1.2.0`. */
export function refFilterSubject(ref: PushedRef): string {
  return `${ref.kind === 'branch' ? 'heads' : 'tags'}/${ref.name}`;
}

/** Compiles a user's filter; a bad expression is an ApiError (400) saying what is wrong with it. */
export function compileRefFilter(source: string): RefFilter {
  if (typeof source !== 'string' || source.trim() === '') {
    throw invalid(
      'ref filter: expected a regular expression such as "heads/main|tags/v.*", not an empty string',
    );
  }
  if (source.length > maxFilterLength) {
    throw invalid(`ref filter: at most ${maxFilterLength} characters`);
  }
  if (source.startsWith('refs/')) {
    throw invalid(
      `ref filter "${source}": refs are matched without their "refs/" prefix; write "${source.slice(5)}"`,
    );
  }
  let wholeMatch: RegExp;
  try {
    // Compiled alone first: a stray ")" could otherwise close the wrapping group and unanchor the rest.
    new RegExp(source);
    wholeMatch = new RegExp(`^(?:${source})$`);
  } catch (error) {
    const detail = (error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    throw invalid(`ref filter "${source}" is not a valid regular expression: ${detail}`);
  }
  return {
    source,
    matches: (ref) => wholeMatch.test(refFilterSubject(ref)),
  };
}

/** Whether a trigger with this filter (or none) builds the ref. */
export function refSelected(filter: RefFilter | undefined, ref: PushedRef): boolean {
  return filter === undefined || filter.matches(ref);
}
