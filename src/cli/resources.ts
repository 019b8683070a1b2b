import { time, type Column } from './output.ts';

/** What /api/v1 answers with, as the CLI reads it. Timestamps are ISO strings. */

export interface AccountResource {
  name: string;
  kind: 'user' | 'organization' | 'robot';
  email: string | null;
  superuser: boolean;
  description: string;
  createdAt: string;
}

export interface TeamResource {
  name: string;
  role: 'member' | 'creator' | 'admin';
  description: string;
  members: number;
}

export interface MemberResource {
  name: string;
  kind: 'user' | 'robot';
}

export interface RepositoryResource {
  name: string;
  namespace: string;
  visibility: 'private' | 'public';
  createdAt: string;
  /** The caller's role (GET of one repository only). */
  role?: 'read' | 'write' | 'admin' | null;
}

export interface PermissionResource {
  kind: 'user' | 'robot' | 'team';
  name: string;
  role: 'read' | 'write' | 'admin';
}

export interface TagResource {
  name: string;
  digest: string;
  updatedAt: string;
}

export interface TagChangeResource {
  digest: string | null;
  previousDigest: string | null;
  actor: string | null;
  occurredAt: string;
}

export interface TokenResource {
  id: number;
  name: string;
  kind: 'personal' | 'robot' | 'session';
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

export interface IssuedTokenResource {
  id: number;
  name: string;
  token: string;
  kind: string;
  createdAt: string;
  expiresAt: string | null;
}

export interface AuditEntryResource {
  id: number;
  occurredAt: string;
  kind: string;
  actor: string | null;
  actorKind: string | null;
  ip: string | null;
  namespace: string | null;
  repository: string | null;
  target: string | null;
  success: boolean;
  metadata: Record<string, unknown>;
}

/** Users, organizations and robots read alike. */
export const accountColumns: ReadonlyArray<Column<AccountResource>> = [
  { header: 'name', value: (account) => account.name },
  { header: 'kind', value: (account) => account.kind },
  { header: 'email', value: (account) => account.email },
  { header: 'superuser', value: (account) => (account.kind === 'user' ? account.superuser : null) },
  { header: 'description', value: (account) => account.description },
  { header: 'created', value: (account) => time(account.createdAt) },
];

export interface SubscriptionResource {
  id: string;
  namespace: string;
  /** null: every repository of the namespace. */
  repository: string | null;
  title: string;
  events: string[];
  filter: string | null;
  method: 'webhook' | 'slack';
  /** Redacted: a Slack URL shows its host only, a webhook URL hides its password. */
  url: string;
  format: 'standard' | 'cloudevents';
  enabled: boolean;
  disabledReason: string | null;
  consecutiveFailures: number;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  /** The whsec_ signing secret, in the answer to a creation (or a change that sets one) only. */
  secret?: string | null;
}

export interface DeliveryAttemptResource {
  attemptedAt: string;
  statusCode: number | null;
  latencyMs: number;
  success: boolean;
  error: string | null;
  responseExcerpt: string | null;
}

export interface DeliveryResource {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventKind: string;
  status: 'pending' | 'delivered' | 'dead' | 'skipped';
  attempts: number;
  nextAttemptAt: string | null;
  createdAt: string;
  finishedAt: string | null;
  attemptLog: DeliveryAttemptResource[];
  payload: Record<string, unknown>;
}

export interface MirrorResource {
  repository: string;
  namespace: string;
  upstream: {
    url: string;
    repository: string;
    username: string | null;
    /** The password itself is never shown. */
    hasPassword: boolean;
    tlsVerify: boolean;
  };
  filter: {
    include: string[];
    exclude: string[];
    regex: string[];
    semver?: string;
    includePrerelease: boolean;
    newest?: number;
  };
  platforms: 'all' | string[];
  /** interval: seconds between syncs; cron: five fields, in UTC. */
  schedule: { interval?: number; cron?: string };
  startAt: string | null;
  enabled: boolean;
  deleteMissing: boolean;
  maxDeletions: number;
  robot: string | null;
  concurrency: number;
  /** Bytes per second; null: unlimited. */
  bandwidthLimit: number | null;
  state: 'never_run' | 'syncing' | 'success' | 'failed' | 'cancelled';
  lastRunAt: string | null;
  nextRunAt: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface MirrorImportResource {
  mirrors: MirrorResource[];
  warnings: Array<{ path: string; message: string }>;
}

export type MirrorTagOutcome =
  'copied' | 'unchanged' | 'skipped' | 'failed' | 'deleted' | 'would-copy' | 'would-delete';

export interface MirrorRunResource {
  id: number;
  repository: string;
  trigger: 'schedule' | 'manual';
  state: 'queued' | 'syncing' | 'success' | 'failed' | 'cancelled';
  dryRun: boolean;
  /** While queued: when it was asked for. */
  startedAt: string;
  finishedAt: string | null;
  cancelRequested: boolean;
  totals: Record<MirrorTagOutcome, number>;
  bytesCopied: number;
  error: string | null;
}

export interface MirrorRunDetailsResource extends MirrorRunResource {
  tags: Array<{ tag: string; outcome: MirrorTagOutcome; digest?: string; reason?: string; bytes?: number }>;
}

export interface TriggerResource {
  id: string;
  repository: string;
  provider: 'github' | 'gitlab' | 'custom';
  /** Where the git provider (or the post-receive hook) sends pushes. */
  webhookUrl: string;
  cloneUrl: string;
  /** How the builder clones; the token or key itself is never shown. */
  credentials: { kind: 'token'; username: string | null } | { kind: 'deploy-key' } | null;
  /** The SSH server's host keys (known_hosts format) its clones accept; null: not checked. */
  knownHosts?: string | null;
  refFilter: string | null;
  dockerfile: string;
  context: string;
  buildArgs: Record<string, string>;
  tagTemplates: string[];
  latestOnDefaultBranch: boolean;
  enabled: boolean;
  /** The robot account whose read access builds also pull with; null for none. */
  pullRobot?: string | null;
  disabledReason: string | null;
  failuresInARow: number;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  /** What Slipway registered on the GitLab project of a trigger it set up there (null otherwise). */
  gitlab?: GitLabLinkResource | null;
  /** What keeps pushes from reaching it (its GitLab hook posts elsewhere, a failed sync); null: nothing. */
  problem?: string | null;
}

export interface GitLabLinkResource {
  apiUrl: string;
  projectId: number;
  projectPath: string;
  hookId: number;
  hookCreated: boolean;
  deployKeyId: number | null;
  deployKeyCreated: boolean | null;
  tlsVerify: boolean;
  tokenStored: boolean;
  /** The URL the hook was registered (or last synced) with; null when unknown. */
  hookUrl?: string | null;
  syncProblem?: string | null;
}

/** A trigger after `POST /triggers/{id}/gitlab/sync`, with what the sync did on GitLab. */
export interface SyncedTriggerResource extends TriggerResource {
  gitlabSync: {
    hookId: number;
    hookRecreated: boolean;
    deployKeyId: number | null;
    deployKeyRecreated: boolean | null;
  };
}

/** A trigger as created, or with its secret replaced: the webhook secret, shown this once. */
export interface IssuedTriggerResource extends TriggerResource {
  webhookSecret: string;
  /** The public half of a deploy key Slipway generated and added to the GitLab project. */
  deployKey?: { publicKey: string; fingerprint: string };
  /** What Slipway could not do on GitLab, and what to set by hand. */
  warnings?: string[];
}

export interface DeletedTriggerResource {
  deleted: string;
  gitlab: { hooksRemoved: number; deployKeyRemoved: boolean } | null;
  warnings: string[];
}

export interface BuildResource {
  id: string;
  repository: string;
  triggerId: string | null;
  triggerKind: 'github' | 'gitlab' | 'git' | 'manual';
  phase: string;
  cloneUrl: string;
  ref: string | null;
  commit: string | null;
  dockerfile: string;
  context: string;
  tags: string[];
  digest: string | null;
  imageBytes: number | null;
  phaseMs: Partial<Record<'cloning' | 'building' | 'pushing', number>>;
  error: string | null;
  requestedBy: string | null;
  pullRobot?: string | null;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  logUrl: string;
  cancelRequested: boolean;
}

export type BuildLogEntryResource =
  | { id: string; type: 'line'; stream: 'stdout' | 'stderr'; text: string; at: number }
  | { id: string; type: 'phase' | 'end'; phase: string; at: number }
  | { id: string; type: 'truncated'; text: string; at: number };

export interface BuildLogPageResource {
  entries: BuildLogEntryResource[];
  cursor: string;
  /** The build is over and every entry of its log has been read. */
  ended: boolean;
}
