import { z } from 'zod';
import { eventKinds } from '../../events/catalog.ts';
import type { Delivery, DeliveryAttempt, Subscription } from '../../events/model.ts';
import type { Account, TokenInfo } from '../../identity/accounts.ts';
import type { AuditRecord } from '../../identity/audit.ts';
import type { PermissionEntry, RepositoryInfo, RepositoryRole } from '../../identity/permissions.ts';
import type { Team } from '../../identity/teams.ts';
import type { TagHistoryEntry } from '../../registry/tag-history.ts';

/**
 * What /api/v1 answers with: one zod schema per resource (the OpenAPI document is generated from
 * them) and the function that turns the service's value into it. Timestamps are ISO 8601 strings.
 */

const timestamp = z.iso.datetime();
const iso = (date: Date) => date.toISOString();
const isoOrNull = (date: Date | null) => (date === null ? null : date.toISOString());

export const errorBody = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .meta({ id: 'Error' });

export const accountResource = z
  .object({
    name: z.string(),
    kind: z.enum(['user', 'organization', 'robot']),
    email: z.string().nullable(),
    superuser: z.boolean(),
    description: z.string(),
    createdAt: timestamp,
  })
  .meta({ id: 'Account' });

export const toAccountResource = (account: Account): z.infer<typeof accountResource> => ({
  name: account.name,
  kind: account.kind,
  email: account.email,
  superuser: account.superuser,
  description: account.description,
  createdAt: iso(account.createdAt),
});

export const teamResource = z
  .object({
    name: z.string(),
    role: z.enum(['member', 'creator', 'admin']),
    description: z.string(),
    members: z.number().int(),
  })
  .meta({ id: 'Team' });

export const toTeamResource = (team: Team & { members: number }): z.infer<typeof teamResource> => ({
  name: team.name,
  role: team.role,
  description: team.description,
  members: team.members,
});

export const memberResource = z
  .object({ name: z.string(), kind: z.enum(['user', 'robot']) })
  .meta({ id: 'TeamMember' });

export const repositoryRole = z.enum(['read', 'write', 'admin']);
export const visibility = z.enum(['private', 'public']);

export const repositoryResource = z
  .object({
    name: z.string(),
    namespace: z.string(),
    visibility,
    createdAt: timestamp,
    role: repositoryRole.nullable().optional().describe("the caller's role (when one repository is read)"),
  })
  .meta({ id: 'Repository' });

export const toRepositoryResource = (
  repository: RepositoryInfo & { role?: RepositoryRole | null },
): z.infer<typeof repositoryResource> => ({
  name: repository.name,
  namespace: repository.namespace,
  visibility: repository.visibility,
  createdAt: iso(repository.createdAt),
  ...(repository.role !== undefined ? { role: repository.role } : {}),
});

export const granteeKind = z.enum(['user', 'robot', 'team']);

export const permissionResource = z
  .object({ kind: granteeKind, name: z.string(), role: repositoryRole })
  .meta({ id: 'Permission' });

export const toPermissionResource = (entry: PermissionEntry): z.infer<typeof permissionResource> => ({
  kind: entry.kind === 'team' ? 'team' : (entry.accountKind ?? 'user'),
  name: entry.name,
  role: entry.role,
});

export const tagResource = z
  .object({ name: z.string(), digest: z.string(), updatedAt: timestamp })
  .meta({ id: 'Tag' });

export const tagChangeResource = z
  .object({
    digest: z.string().nullable().describe('where the tag pointed after the change; null when deleted'),
    previousDigest: z.string().nullable(),
    actor: z.string().nullable(),
    occurredAt: timestamp,
  })
  .meta({ id: 'TagChange' });

export const toTagChangeResource = (entry: TagHistoryEntry): z.infer<typeof tagChangeResource> => ({
  digest: entry.digest,
  previousDigest: entry.previousDigest,
  actor: entry.actor,
  occurredAt: iso(entry.occurredAt),
});

export const tokenResource = z
  .object({
    id: z.number().int(),
    name: z.string(),
    kind: z.enum(['personal', 'robot', 'session']),
    createdAt: timestamp,
    expiresAt: timestamp.nullable(),
    lastUsedAt: timestamp.nullable(),
  })
  .meta({ id: 'Token' });

export const toTokenResource = (token: TokenInfo): z.infer<typeof tokenResource> => ({
  id: token.id,
  name: token.name,
  kind: token.kind,
  createdAt: iso(token.createdAt),
  expiresAt: isoOrNull(token.expiresAt),
  lastUsedAt: isoOrNull(token.lastUsedAt),
});

export const issuedTokenResource = tokenResource
  .omit({ lastUsedAt: true })
  .extend({ token: z.string().describe('shown once: store it now') })
  .meta({ id: 'IssuedToken' });

export const auditEntryResource = z
  .object({
    id: z.number().int(),
    occurredAt: timestamp,
    kind: z.string(),
    actor: z.string().nullable(),
    actorKind: z.string().nullable(),
    ip: z.string().nullable(),
    namespace: z.string().nullable(),
    repository: z.string().nullable(),
    target: z.string().nullable(),
    success: z.boolean(),
    metadata: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });

export const toAuditEntryResource = (entry: AuditRecord): z.infer<typeof auditEntryResource> => ({
  id: entry.id,
  occurredAt: iso(entry.occurredAt),
  kind: entry.kind,
  actor: entry.actor,
  actorKind: entry.actorKind,
  ip: entry.ip,
  namespace: entry.namespace,
  repository: entry.repository,
  target: entry.target,
  success: entry.success,
  metadata: entry.metadata,
});

export const eventKind = z.enum(eventKinds, {
  error: (issue) =>
    `unknown event kind ${JSON.stringify(issue.input)}; known kinds: ${eventKinds.join(', ')}`,
});
export const deliveryMethod = z.enum(['webhook', 'slack']);
export const payloadFormat = z.enum(['standard', 'cloudevents']);
export const deliveryStatus = z.enum(['pending', 'delivered', 'dead', 'skipped']);

export const subscriptionResource = z
  .object({
    id: z.uuid(),
    namespace: z.string(),
    repository: z.string().nullable().describe('null: every repository of the namespace'),
    title: z.string(),
    events: z.array(eventKind),
    filter: z
      .string()
      .nullable()
      .describe('a tag glob (repo_push, repo_tag_deleted) or a git ref regex (builds); null: everything'),
    method: deliveryMethod,
    url: z
      .string()
      .describe('where deliveries go; a Slack URL shows only its host, a webhook URL hides its password'),
    format: payloadFormat,
    enabled: z.boolean(),
    disabledReason: z.string().nullable().describe('why Slipway stopped delivering, when it did'),
    consecutiveFailures: z.number().int(),
    createdBy: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Subscription' });

export const toSubscriptionResource = (subscription: Subscription): z.infer<typeof subscriptionResource> => ({
  id: subscription.id,
  namespace: subscription.namespace,
  repository: subscription.repository,
  title: subscription.title,
  events: subscription.events,
  filter: subscription.filter,
  method: subscription.method,
  url: shownDestination(subscription),
  format: subscription.format,
  enabled: subscription.enabled,
  disabledReason: subscription.disabledReason,
  consecutiveFailures: subscription.consecutiveFailures,
  createdBy: subscription.createdBy,
  createdAt: iso(subscription.createdAt),
  updatedAt: iso(subscription.updatedAt),
});

export const issuedSubscriptionResource = subscriptionResource
  .extend({
    secret: z
      .string()
      .nullable()
      .describe('the whsec_ signing secret, shown once: store it now (null for Slack)'),
  })
  .meta({ id: 'IssuedSubscription' });

/**
 * A destination as the API shows it. A Slack incoming-webhook URL is itself the credential, so only
 * its scheme and host show; a webhook URL shows whole but for a password in it.
 */
export function shownDestination(subscription: Pick<Subscription, 'method' | 'url'>): string {
  const url = new URL(subscription.url);
  if (subscription.method === 'slack') return `${url.protocol}//${url.host}/…`;
  if (url.password) url.password = '***';
  return url.href;
}

export const deliveryAttemptResource = z
  .object({
    attemptedAt: timestamp,
    statusCode: z.number().int().nullable().describe('the HTTP status; null when no response came'),
    latencyMs: z.number(),
    success: z.boolean(),
    error: z.string().nullable(),
    responseExcerpt: z.string().nullable().describe('the first bytes of the response body'),
  })
  .meta({ id: 'DeliveryAttempt' });

const toDeliveryAttemptResource = (attempt: DeliveryAttempt): z.infer<typeof deliveryAttemptResource> => ({
  attemptedAt: iso(attempt.attemptedAt),
  statusCode: attempt.statusCode,
  latencyMs: attempt.latencyMs,
  success: attempt.success,
  error: attempt.error,
  responseExcerpt: attempt.responseExcerpt,
});

export const deliveryResource = z
  .object({
    id: z.string().describe('also the webhook-id header, the same on every attempt and replay'),
    subscriptionId: z.uuid(),
    eventId: z.string(),
    eventKind: z.enum(eventKinds),
    status: deliveryStatus.describe(
      'pending: queued or waiting for a retry; dead: every attempt failed (replay it); skipped: the subscription was disabled',
    ),
    attempts: z.number().int(),
    nextAttemptAt: timestamp.nullable(),
    createdAt: timestamp,
    finishedAt: timestamp.nullable(),
    attemptLog: z.array(deliveryAttemptResource).describe('every attempt made'),
    payload: z.record(z.string(), z.unknown()).describe('the event sent (see docs/events)'),
  })
  .meta({ id: 'Delivery' });

export const toDeliveryResource = (delivery: Delivery): z.infer<typeof deliveryResource> => ({
  id: delivery.id,
  subscriptionId: delivery.subscriptionId,
  eventId: delivery.eventId,
  eventKind: delivery.eventKind,
  status: delivery.status,
  attempts: delivery.attempts,
  nextAttemptAt: isoOrNull(delivery.nextAttemptAt),
  createdAt: iso(delivery.createdAt),
  finishedAt: isoOrNull(delivery.finishedAt),
  attemptLog: delivery.attemptLog.map(toDeliveryAttemptResource),
  payload: delivery.payload,
});
