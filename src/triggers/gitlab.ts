import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { sameSecret } from '../identity/secrets.ts';
import { payloadError, WebhookAuthError, WebhookPayloadError } from './errors.ts';
import type { HeaderValue } from './hub-signature.ts';
import { isZeroObjectId, objectIdSchema, parsePushedRef, type PushEvent } from './push-event.ts';

/*
 * GitLab webhooks: GitLab sends the webhook's secret token as it is in `X-Gitlab-Token` (it does not sign
 * the body), and names the event in `X-Gitlab-Event`. "Push Hook" and "Tag Push Hook" become PushEvents;
 * every other event is ignored with a reason, which GitLab shows in the webhook's "Recent events".
 */

export const gitLabTokenHeader = 'X-Gitlab-Token';

/**
 * Refuses the delivery (WebhookAuthError, 401) unless the header carries the trigger's token. Both sides
 * are hashed to equal length first, so the comparison takes the same time whatever the header holds.
 */
export function verifyGitLabToken(expected: string, header: HeaderValue): void {
  if (expected === '')
    throw new ConfigError('the trigger has no webhook token; set one before accepting pushes');
  if (header === undefined || header === '' || (Array.isArray(header) && header.length === 0)) {
    throw new WebhookAuthError(
      'missing',
      gitLabTokenHeader,
      `the ${gitLabTokenHeader} header is missing: set the trigger's token as the webhook's "Secret token" in GitLab`,
    );
  }
  if (typeof header !== 'string') {
    throw new WebhookAuthError(
      'malformed',
      gitLabTokenHeader,
      `the ${gitLabTokenHeader} header is given more than once`,
    );
  }
  if (!sameSecret(header, expected)) {
    throw new WebhookAuthError(
      'mismatch',
      gitLabTokenHeader,
      `the ${gitLabTokenHeader} header does not match the trigger's token`,
    );
  }
}

export type GitLabDelivery = { kind: 'push'; event: PushEvent } | { kind: 'ignored'; reason: string };

const pushEventNames = { 'Push Hook': 'push', 'Tag Push Hook': 'tag_push' } as const;

const pushPayload = z.object({
  object_kind: z.enum(['push', 'tag_push']),
  ref: z.string({ error: 'expected the pushed ref, such as "refs/heads/main"' }),
  before: objectIdSchema,
  after: objectIdSchema,
  // The commit checked out after the push; null when the push deleted the ref.
  checkout_sha: objectIdSchema.nullable().optional(),
  // An annotated tag's message (tag pushes only).
  message: z.string().nullable().optional(),
  user_name: z.string(),
  user_username: z.string().optional(),
  user_email: z.string().nullable().optional(),
  project: z.object({
    path_with_namespace: z.string(),
    git_http_url: z.string().optional(),
    git_ssh_url: z.string().optional(),
    default_branch: z.string().nullable().optional(),
    web_url: z.string().optional(),
  }),
  commits: z.array(z.object({ id: objectIdSchema, message: z.string() })).default([]),
});

/** Reads a verified delivery; a payload missing a field Slipway needs is a WebhookPayloadError (400). */
export function parseGitLabEvent(eventHeader: string | undefined, payload: unknown): GitLabDelivery {
  if (eventHeader === undefined || eventHeader === '') {
    throw new WebhookPayloadError('the X-Gitlab-Event header is missing');
  }
  if (!Object.hasOwn(pushEventNames, eventHeader)) {
    return {
      kind: 'ignored',
      reason: `GitLab "${eventHeader}" events do not trigger builds; only "Push Hook" and "Tag Push Hook" do`,
    };
  }
  const parsed = pushPayload.safeParse(payload);
  if (!parsed.success) throw payloadError(`GitLab ${eventHeader} payload`, parsed.error);
  const push = parsed.data;
  const expectedKind = pushEventNames[eventHeader as keyof typeof pushEventNames];
  if (push.object_kind !== expectedKind) {
    throw new WebhookPayloadError(
      `a GitLab ${eventHeader} payload must have object_kind "${expectedKind}", not "${push.object_kind}"`,
    );
  }
  const ref = parsePushedRef(push.ref);
  if (!ref) return { kind: 'ignored', reason: `${push.ref} is neither a branch nor a tag` };
  if ((ref.kind === 'tag') !== (push.object_kind === 'tag_push')) {
    throw new WebhookPayloadError(`a GitLab ${eventHeader} payload cannot push ${push.ref}`);
  }
  const deleted = isZeroObjectId(push.after);
  // For an annotated tag `after` is the tag object and `checkout_sha` the commit it points to.
  const commit = deleted ? push.after : (push.checkout_sha ?? push.after);
  const { project } = push;
  const cloneUrl = project.git_http_url ?? project.git_ssh_url;
  if (!cloneUrl) {
    throw new WebhookPayloadError(
      `invalid GitLab ${eventHeader} payload: project has neither git_http_url nor git_ssh_url`,
    );
  }
  const event: PushEvent = {
    provider: 'gitlab',
    ref,
    commit,
    deleted,
    cloneUrl: {
      url: cloneUrl,
      ...(project.git_http_url ? { http: project.git_http_url } : {}),
      ...(project.git_ssh_url ? { ssh: project.git_ssh_url } : {}),
    },
    repository: project.path_with_namespace,
    author: { name: push.user_name },
  };
  // GitLab sends "" or "[REDACTED]" for an email the user keeps private.
  if (push.user_email && push.user_email.includes('@')) event.author.email = push.user_email;
  if (push.user_username) event.author.username = push.user_username;
  if (project.default_branch) event.defaultBranch = project.default_branch;
  if (!isZeroObjectId(push.before)) event.before = push.before;
  if (!deleted) {
    const message = push.commits.find((c) => c.id === commit)?.message ?? push.message ?? undefined;
    if (message) event.message = message;
  }
  if (project.web_url && event.before && !deleted) {
    event.compareUrl = `${project.web_url}/-/compare/${event.before}...${commit}`;
  }
  return { kind: 'push', event };
}
