import { invalid } from '../errors.ts';
import type { PushEvent } from './push-event.ts';

/*
 * The tags a build pushes, from the trigger's templates. Variables:
 *   ${branch}     the branch name (feature/login → feature-login once sanitised); only on branch pushes
 *   ${tag}        the git tag name (v1.4.0); only on tag pushes
 *   ${sha}        the full commit SHA
 *   ${short_sha}  its first 7 characters
 *   ${date}       the UTC day of the push as yyyymmdd (20261202): digits only, so it sorts and never needs
 *                 sanitising; the push time when the provider gives it, else the time of the expansion
 *
 * A template naming an unknown variable is refused when the trigger is saved. At build time:
 *  - a template using a variable this push does not have (`${tag}` or `v${tag}` on a branch push) gives
 *    no tag, rather than a half-filled one;
 *  - every result is made a valid OCI tag, [A-Za-z0-9_][A-Za-z0-9._-]{0,127}: each run of other
 *    characters becomes "-", leading "." and "-" are dropped, and it is cut to 128 characters; a result
 *    left empty gives no tag;
 *  - `latest` is added for a push to the default branch when the trigger asks for it;
 *  - duplicates are removed, first occurrence kept.
 */

export const tagTemplateVariables = ['branch', 'tag', 'sha', 'short_sha', 'date'] as const;
export type TagTemplateVariable = (typeof tagTemplateVariables)[number];

/** A trigger may have at most this many templates. */
export const maxTagTemplates = 20;

type Part = { literal: string } | { variable: TagTemplateVariable };

export interface TagTemplate {
  readonly source: string;
  readonly parts: readonly Part[];
}

export interface TagTemplateSettings {
  templates: readonly TagTemplate[];
  /** Also tag `latest` when the push is to the repository's default branch. */
  latestOnDefaultBranch: boolean;
}

/** Parses one template; an unknown variable or an unclosed `${` is an ApiError (400). */
export function parseTagTemplate(source: string): TagTemplate {
  const parts: Part[] = [];
  let rest = source;
  while (rest !== '') {
    const start = rest.indexOf('${');
    if (start === -1) {
      parts.push({ literal: rest });
      break;
    }
    if (start > 0) parts.push({ literal: rest.slice(0, start) });
    const end = rest.indexOf('}', start);
    if (end === -1) throw invalid(`tag template "${source}": "\${" is not closed by "}"`);
    const name = rest.slice(start + 2, end);
    if (!(tagTemplateVariables as readonly string[]).includes(name)) {
      throw invalid(
        `tag template "${source}": unknown variable \${${name}}; use ${tagTemplateVariables.map((v) => `\${${v}}`).join(', ')}`,
      );
    }
    parts.push({ variable: name as TagTemplateVariable });
    rest = rest.slice(end + 1);
  }
  if (parts.every((part) => 'literal' in part) && sanitizeTag(source) === '') {
    throw invalid(`tag template "${source}" can never give a valid tag`);
  }
  return { source, parts };
}

/** Parses a trigger's templates, refusing the first bad one. */
export function parseTagTemplates(sources: readonly string[]): TagTemplate[] {
  if (sources.length > maxTagTemplates) throw invalid(`at most ${maxTagTemplates} tag templates`);
  return sources.map(parseTagTemplate);
}

/** Makes text a valid OCI tag, or "" when nothing of it can be kept. */
export function sanitizeTag(text: string): string {
  return text
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 128);
}

/** The tags a build of `event` pushes. A deleted ref gives none. */
export function expandTagTemplates(
  settings: TagTemplateSettings,
  event: PushEvent,
  options: { now?: Date } = {},
): string[] {
  if (event.deleted) return [];
  const values = templateValues(event, options.now ?? new Date());
  const tags = new Set<string>();
  for (const template of settings.templates) {
    let text = '';
    let complete = true;
    for (const part of template.parts) {
      if ('literal' in part) {
        text += part.literal;
        continue;
      }
      const value = values[part.variable];
      if (value === undefined) {
        complete = false;
        break;
      }
      text += value;
    }
    const tag = complete ? sanitizeTag(text) : '';
    if (tag !== '') tags.add(tag);
  }
  if (
    settings.latestOnDefaultBranch &&
    event.ref.kind === 'branch' &&
    event.defaultBranch !== undefined &&
    event.ref.name === event.defaultBranch
  ) {
    tags.add('latest');
  }
  return [...tags];
}

function templateValues(event: PushEvent, now: Date): Record<TagTemplateVariable, string | undefined> {
  const pushedAt = event.pushedAt ? new Date(event.pushedAt) : now;
  return {
    branch: event.ref.kind === 'branch' ? event.ref.name : undefined,
    tag: event.ref.kind === 'tag' ? event.ref.name : undefined,
    sha: event.commit,
    short_sha: event.commit.slice(0, 7),
    date: pushedAt.toISOString().slice(0, 10).replaceAll('-', ''),
  };
}
