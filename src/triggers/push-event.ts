import { z } from 'zod';

/*
 * A push, as every git provider's webhook is turned into before trigger rules see it. Ref filters, tag
 * templates and the build request read only this, never a provider's payload.
 */

export type GitProvider = 'github' | 'gitlab' | 'custom';

export interface PushedRef {
  kind: 'branch' | 'tag';
  /** The branch or tag name: `main`, `feature/login`, `v1.4.0`. */
  name: string;
  /** The full ref: `refs/heads/main`, `refs/tags/v1.4.0`. */
  full: string;
}

export interface CloneUrls {
  /** The URL a builder clones by default: the HTTP(S) one when the provider gives one, else the other. */
  url: string;
  http?: string;
  ssh?: string;
}

export interface PushAuthor {
  name: string;
  email?: string;
  username?: string;
}

export interface PushEvent {
  provider: GitProvider;
  ref: PushedRef;
  /**
   * The commit to build, lowercase hex (40 digits, or 64 in a SHA-256 repository). For a tag push it is
   * the tagged commit, not the annotated tag object. All zeros when `deleted`.
   */
  commit: string;
  /** What the ref pointed to before the push; absent when the push created it. */
  before?: string;
  /** The push deleted the ref: there is nothing to build. */
  deleted: boolean;
  cloneUrl: CloneUrls;
  /** `owner/name` on GitHub, the project's full path on GitLab (`group/subgroup/app`). */
  repository: string;
  defaultBranch?: string;
  /**
   * Who the push is attributed to: the pusher on GitHub and GitLab; for custom git what the payload
   * says (Slipway's post-receive hook sends the head commit's author).
   */
  author: PushAuthor;
  /** The head commit's message, when the payload carries it. */
  message?: string;
  /** A web page showing what the push changed. */
  compareUrl?: string;
  /** When the push happened (ISO 8601, UTC), when the provider says. */
  pushedAt?: string;
}

/** A git object id: 40 hex digits (SHA-1) or 64 (SHA-256 repositories), read case-insensitively. */
export const objectIdSchema = z
  .string({ error: 'expected a commit SHA' })
  .regex(/^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/, { error: 'expected a commit SHA of 40 hex digits' })
  .transform((sha) => sha.toLowerCase());

/** Git's "no object" id, which a push reports as the new value of a deleted ref. */
export function isZeroObjectId(sha: string): boolean {
  return /^0+$/.test(sha);
}

/** `refs/heads/feature/x` → a branch named `feature/x`; anything but a branch or tag → null. */
export function parsePushedRef(full: string): PushedRef | null {
  const match = /^refs\/(heads|tags)\/(.+)$/.exec(full);
  if (!match) return null;
  return { kind: match[1] === 'heads' ? 'branch' : 'tag', name: match[2]!, full };
}

/** Numbers are Unix seconds (GitHub sends `pushed_at` so in push events); strings are parsed dates. */
export function isoTime(value: number | string | null | undefined): string | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
