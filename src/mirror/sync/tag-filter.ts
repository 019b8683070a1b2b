import picomatch from 'picomatch';
import semver, { type SemVer } from 'semver';
import { z } from 'zod';
import { invalid } from '../../errors.ts';

/*
 * Which of an upstream repository's tags a mirror copies.
 *
 * A tag is selected when it passes every criterion the filter gives; a filter with none selects every
 * tag. The criteria, in the order a rejected tag's reason names the first one it fails:
 *   exclude            globs; a tag matching any of them is left out, whatever else matches (excludes win)
 *   include            globs; the tag must match at least one
 *   regex              regular expressions; the tag must match at least one. Unanchored, as in skopeo and
 *                      zot: `^1\.2` matches 1.2.3, write `^…$` to match whole tags
 *   semver             a range (`>=1.24 <2`, `~1.27`, `^1 || ^2`); the tag must read as a version in it
 *   newest             of the tags that passed everything else, keep the N highest versions only
 *
 * Globs are picomatch globs over the whole tag. Tags hold no "/", so `*` matches any run of characters,
 * dots and dashes included (`v1.*` matches v1.2.3-rc.1). Quay's comma-separated lists work as they are:
 * "v1.*,latest" is two globs, while a comma inside braces (`1.{26,27}.*`) stays part of its glob.
 *
 * A tag reads as a version when it is semver with an optional leading "v" and optional minor and patch:
 * 1.27 is 1.27.0 and v2 is 2.0.0, as skopeo's `images-by-semver` reads them. Whatever follows a "-" is a
 * pre-release in semver, so variant tags such as 1.27.3-alpine count as pre-releases, alongside
 * 1.28.0-rc.1. Pre-releases are left out by the range and by `newest` unless `includePrerelease` is set.
 *
 * `newest: N` selects at most N tags: only versions are ranked (semver order; equal versions such as
 * 1.27 and 1.27.0 by tag name), and tags that are not versions are not selected, so a dry run of
 * "newest 5" shows five tags to copy rather than five plus every `latest`, `stable` and `alpine`.
 */

/** Tag characters plus glob syntax; anything else (a "/", a ":", a space) can never match a tag. */
const globCharacters = /^[A-Za-z0-9._\-*?[\]{}(),!+@|^\\]+$/;

const tagGlob = z
  .string({ error: 'expected a glob such as "v1.*"' })
  .trim()
  .min(1, { error: 'expected a glob such as "v1.*", not an empty string' })
  .superRefine((glob, ctx) => {
    const problem = globProblem(glob);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const globList = z.preprocess(
  splitGlobLists,
  z.array(tagGlob, { error: 'expected globs, as a list or comma-separated such as "v1.*,latest"' }),
);

const tagRegex = z
  .string({ error: 'expected a regular expression such as "^v1\\."' })
  .min(1, { error: 'expected a regular expression such as "^v1\\.", not an empty string' })
  .superRefine((source, ctx) => {
    const problem = regexProblem(source);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const semverRange = z
  .string({ error: 'expected a semver range such as ">=1.24 <2"' })
  .trim()
  .min(1, { error: 'expected a semver range such as ">=1.24 <2", not an empty string' })
  // skopeo's semver library also takes commas between conditions (">= 1.24, < 2").
  .transform((range) => range.replace(/\s*,\s*/g, ' '))
  .superRefine((range, ctx) => {
    const problem = rangeProblem(range);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const newestCount = z
  .number({ error: 'expected a whole number of at least 1, e.g. 5' })
  .int({ error: 'expected a whole number of at least 1, e.g. 5' })
  .min(1, { error: 'expected a whole number of at least 1, e.g. 5' });

const filterKeys = 'include, exclude, regex, semver, includePrerelease and newest';

export const tagFilterSchema = z.strictObject(
  {
    include: globList.default([]),
    exclude: globList.default([]),
    regex: z.array(tagRegex, { error: 'expected a list of regular expressions' }).default([]),
    semver: semverRange.optional(),
    /** Let pre-releases (1.28.0-rc.1, and variant tags like 1.27.3-alpine) into the range and the ranking. */
    includePrerelease: z.boolean({ error: 'expected true or false' }).default(false),
    newest: newestCount.optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.map(quote).join(', ')}; a filter has ${filterKeys}`
        : `expected a filter with ${filterKeys}`,
  },
);

export type TagFilter = z.output<typeof tagFilterSchema>;
export type TagFilterInput = z.input<typeof tagFilterSchema>;

export type TagDecision = { tag: string; selected: true } | { tag: string; selected: false; reason: string };

/** A filter definition from the API or a file; a wrong one fails with every problem and where it is. */
export function parseTagFilter(input: unknown): TagFilter {
  const result = tagFilterSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) =>
    issue.path.length > 0 ? `${issuePath(issue.path)}: ${issue.message}` : issue.message,
  );
  throw invalid(`invalid tag filter: ${problems.join('; ')}`);
}

/** Every tag with whether the filter selects it and, when not, why: what a dry run shows. */
export function selectTags(filter: TagFilter, tags: readonly string[]): TagDecision[] {
  const criteria = compileCriteria(filter);
  const decisions = tags.map((tag): TagDecision => {
    for (const rejects of criteria) {
      const reason = rejects(tag);
      if (reason !== null) return { tag, selected: false, reason };
    }
    return { tag, selected: true };
  });
  return filter.newest === undefined ? decisions : keepNewest(decisions, filter.newest, filter);
}

/** The version a tag stands for (`v1.27` is 1.27.0), or null when it is not one. */
export function tagVersion(tag: string): SemVer | null {
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$/.exec(tag);
  if (!match) return null;
  const [, major, minor = '0', patch = '0', prerelease] = match;
  const numbers = [major!, minor, patch].map((n) => n.replace(/^0+(?=\d)/, '')).join('.');
  return semver.parse(prerelease === undefined ? numbers : `${numbers}-${prerelease}`);
}

/** A glob matching exactly this tag, for filters built from lists of tags. */
export function exactTagGlob(tag: string): string {
  return tag.replace(/[\\*?[\]{}()!+@|^,]/g, '\\$&');
}

/** Returns why the tag is left out, or null when it passes. */
type Criterion = (tag: string) => string | null;

function compileCriteria(filter: TagFilter): Criterion[] {
  const criteria: Criterion[] = [];
  if (filter.exclude.length > 0) criteria.push(excludeCriterion(filter.exclude));
  if (filter.include.length > 0) criteria.push(includeCriterion(filter.include));
  if (filter.regex.length > 0) criteria.push(regexCriterion(filter.regex));
  if (filter.semver !== undefined) criteria.push(semverCriterion(filter.semver, filter.includePrerelease));
  return criteria;
}

function excludeCriterion(globs: readonly string[]): Criterion {
  const matchers = globs.map((glob) => ({ glob, matches: picomatch(glob) }));
  return (tag) => {
    const hit = matchers.find(({ matches }) => matches(tag));
    return hit ? `excluded by "${hit.glob}"` : null;
  };
}

function includeCriterion(globs: readonly string[]): Criterion {
  const matches = picomatch([...globs]);
  const reason =
    globs.length === 1 ? `does not match "${globs[0]}"` : `matches none of ${globs.map(quote).join(', ')}`;
  return (tag) => (matches(tag) ? null : reason);
}

function regexCriterion(sources: readonly string[]): Criterion {
  const patterns = sources.map((source) => new RegExp(source));
  const reason =
    patterns.length === 1 ? `does not match ${patterns[0]}` : `matches none of ${patterns.join(', ')}`;
  return (tag) => (patterns.some((pattern) => pattern.test(tag)) ? null : reason);
}

function semverCriterion(range: string, includePrerelease: boolean): Criterion {
  return (tag) => {
    const version = tagVersion(tag);
    if (!version) return `not a version, so outside semver range "${range}"`;
    if (semver.satisfies(version, range, { includePrerelease })) return null;
    if (!includePrerelease && semver.satisfies(version, range, { includePrerelease: true })) {
      return `pre-release (set includePrerelease to mirror pre-releases in "${range}")`;
    }
    return `outside semver range "${range}"`;
  };
}

function keepNewest(decisions: TagDecision[], count: number, filter: TagFilter): TagDecision[] {
  const ranked = decisions
    .filter((decision) => decision.selected)
    .map(({ tag }) => ({ tag, version: tagVersion(tag) }))
    .filter((entry): entry is { tag: string; version: SemVer } => rankable(entry.version, filter))
    .sort((a, b) => semver.rcompare(a.version, b.version) || (a.tag < b.tag ? -1 : 1));
  const newest = new Set(ranked.slice(0, count).map(({ tag }) => tag));
  return decisions.map((decision) => {
    if (!decision.selected || newest.has(decision.tag)) return decision;
    return { tag: decision.tag, selected: false, reason: notNewestReason(decision.tag, filter) };
  });
}

function rankable(version: SemVer | null, filter: TagFilter): boolean {
  return version !== null && (filter.includePrerelease || version.prerelease.length === 0);
}

function notNewestReason(tag: string, filter: TagFilter): string {
  const version = tagVersion(tag);
  if (!version) return `not a version, so not ranked for the newest ${filter.newest}`;
  if (!rankable(version, filter)) {
    return `pre-release, not ranked for the newest ${filter.newest} (set includePrerelease to rank pre-releases)`;
  }
  return `older than the newest ${filter.newest}`;
}

function globProblem(glob: string): string | null {
  if (glob.startsWith('!') && !glob.startsWith('!(')) {
    return `"${glob}" starts with "!": to leave tags out, list "${glob.slice(1)}" under exclude`;
  }
  if (!globCharacters.test(glob)) {
    const character = [...glob].find((c) => !globCharacters.test(c));
    return `"${glob}" contains "${character}", which no tag has (tags are letters, digits, ".", "_" and "-")`;
  }
  return null;
}

function regexProblem(source: string): string | null {
  try {
    new RegExp(source);
    return null;
  } catch (error) {
    const detail = (error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    return `"${source}" is not a valid regular expression: ${detail}`;
  }
}

function rangeProblem(range: string): string | null {
  if (semver.validRange(range) !== null) return null;
  if (range.includes('!=')) {
    return `"${range}": "!=" is not supported in semver ranges; leave single versions out with exclude globs`;
  }
  return `"${range}" is not a semver range; write conditions such as ">=1.24 <2", "~1.27" or "^1 || ^2"`;
}

/** Splits Quay-style "v1.*,latest" on commas, except those inside `{…}` alternatives. */
function splitGlobLists(value: unknown): unknown {
  if (typeof value === 'string') return splitOutsideBraces(value);
  if (!Array.isArray(value)) return value;
  return value.flatMap((item: unknown) => (typeof item === 'string' ? splitOutsideBraces(item) : [item]));
}

function splitOutsideBraces(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const character = text[i];
    if (character === '\\') i++;
    else if (character === '{') depth++;
    else if (character === '}') depth = Math.max(0, depth - 1);
    else if (character === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((part) => part.trim()).filter((part) => part !== '');
}

function issuePath(path: readonly PropertyKey[]): string {
  const text = path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('');
  return text.replace(/^\./, '');
}

const quote = (text: string): string => `"${text}"`;
