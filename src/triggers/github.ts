import type { EmitterWebhookEvent } from '@octokit/webhooks';
import { z } from 'zod';
import { bodyText, parseJsonBody } from './body.ts';
import { payloadError, WebhookPayloadError } from './errors.ts';
import { signSha256, verifySha256Signature, type HeaderValue } from './hub-signature.ts';
import { isoTime, isZeroObjectId, objectIdSchema, parsePushedRef, type PushEvent } from './push-event.ts';

/*
 * GitHub webhooks: `X-Hub-Signature-256` verified over the raw body, then the `X-GitHub-Event` named
 * payload read. `ping` (sent when the webhook is created) is answered; `push` to a branch or tag becomes a
 * PushEvent; every other event is ignored with a reason the route can send back, which GitHub shows under
 * the webhook's "Recent Deliveries".
 */

export const gitHubSignatureHeader = 'X-Hub-Signature-256';

/** Refuses the delivery (WebhookAuthError, 401) unless its signature matches `secret`. */
export function verifyGitHubDelivery(
  secret: string,
  rawBody: Buffer | string,
  signatureHeader: HeaderValue,
): Promise<void> {
  return verifySha256Signature(secret, rawBody, signatureHeader, gitHubSignatureHeader);
}

/** Signs a body exactly as GitHub does: `sha256=` and the hex HMAC-SHA256 of the body. */
export function signGitHubDelivery(secret: string, body: string): Promise<string> {
  return signSha256(secret, body);
}

/**
 * The payload of a verified delivery. GitHub sends JSON or, when the webhook's content type is left at
 * `application/x-www-form-urlencoded`, the JSON in a `payload` form field; both are accepted.
 */
export function decodeGitHubBody(rawBody: Buffer | string, contentType: string | undefined): unknown {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/x-www-form-urlencoded') return parseJsonBody(rawBody);
  const payload = new URLSearchParams(bodyText(rawBody)).get('payload');
  if (payload === null) {
    throw new WebhookPayloadError('the form-encoded body has no "payload" field');
  }
  return parseJsonBody(payload);
}

export type GitHubDelivery =
  | { kind: 'ping'; zen: string | undefined; hookId: number | undefined; events: string[] | undefined }
  | { kind: 'push'; event: PushEvent }
  | { kind: 'ignored'; reason: string };

const pingPayload = z.object({
  zen: z.string().optional(),
  hook_id: z.number().optional(),
  hook: z.object({ events: z.array(z.string()).optional() }).optional(),
});

const gitAuthor = z.object({
  name: z.string(),
  email: z.string().nullable().optional(),
  username: z.string().optional(),
});

/** The fields Slipway reads from a push payload; the rest of GitHub's payload is ignored. */
const pushPayload = z.object({
  ref: z.string({ error: 'expected the pushed ref, such as "refs/heads/main"' }),
  before: objectIdSchema,
  after: objectIdSchema,
  deleted: z.boolean(),
  compare: z.string().optional(),
  head_commit: z.object({ id: objectIdSchema, message: z.string(), author: gitAuthor }).nullable(),
  pusher: z.object({ name: z.string(), email: z.string().nullable().optional() }),
  sender: z.object({ login: z.string() }).optional(),
  repository: z.object({
    full_name: z.string(),
    clone_url: z.string(),
    ssh_url: z.string(),
    default_branch: z.string(),
    pushed_at: z.union([z.number(), z.string()]).nullable().optional(),
  }),
});

// Compile-time checks that every payload GitHub's published types describe fits these schemas: a schema
// demanding a field GitHub may leave out (or null) would refuse real deliveries.
type Fits<Schema, Payload extends Schema> = Payload;
type _PushFits = Fits<z.input<typeof pushPayload>, EmitterWebhookEvent<'push'>['payload']>;
type _PingFits = Fits<z.input<typeof pingPayload>, EmitterWebhookEvent<'ping'>['payload']>;

/** Reads a verified delivery; a payload missing a field Slipway needs is a WebhookPayloadError (400). */
export function parseGitHubEvent(eventName: string | undefined, payload: unknown): GitHubDelivery {
  if (eventName === undefined || eventName === '') {
    throw new WebhookPayloadError('the X-GitHub-Event header is missing');
  }
  if (eventName === 'ping') {
    const parsed = pingPayload.safeParse(payload);
    if (!parsed.success) throw payloadError('GitHub ping payload', parsed.error);
    return {
      kind: 'ping',
      zen: parsed.data.zen,
      hookId: parsed.data.hook_id,
      events: parsed.data.hook?.events,
    };
  }
  if (eventName !== 'push') {
    return {
      kind: 'ignored',
      reason: `GitHub "${eventName}" events do not trigger builds; only "push" (to branches and tags) does`,
    };
  }
  const parsed = pushPayload.safeParse(payload);
  if (!parsed.success) throw payloadError('GitHub push payload', parsed.error);
  const push = parsed.data;
  const ref = parsePushedRef(push.ref);
  if (!ref) return { kind: 'ignored', reason: `${push.ref} is neither a branch nor a tag` };
  const deleted = push.deleted || isZeroObjectId(push.after);
  const event: PushEvent = {
    provider: 'github',
    ref,
    // For an annotated tag `after` is the tag object; the head commit is what it points to.
    commit: deleted ? push.after : (push.head_commit?.id ?? push.after),
    deleted,
    cloneUrl: {
      url: push.repository.clone_url,
      http: push.repository.clone_url,
      ssh: push.repository.ssh_url,
    },
    repository: push.repository.full_name,
    defaultBranch: push.repository.default_branch,
    author: {
      name: push.pusher.name,
      ...(push.pusher.email ? { email: push.pusher.email } : {}),
      username: push.sender?.login ?? push.pusher.name,
    },
  };
  if (!isZeroObjectId(push.before)) event.before = push.before;
  if (push.head_commit && !deleted) event.message = push.head_commit.message;
  if (push.compare) event.compareUrl = push.compare;
  const pushedAt = isoTime(push.repository.pushed_at);
  if (pushedAt) event.pushedAt = pushedAt;
  return { kind: 'push', event };
}
