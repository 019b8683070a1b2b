import { randomBytes, randomUUID } from 'node:crypto';
import picomatch from 'picomatch';
import type { Database, Queryable } from '../db/database.ts';
import { isUuid } from '../db/uuid.ts';
import { invalid, notFound } from '../errors.ts';
import type { SealedBox } from '../identity/sealed-box.ts';
import { eventKinds, filterTargetOf, isEventKind, type EventKind } from './catalog.ts';
import type { DeliveryMethod, PayloadFormat, Subscription } from './model.ts';

export interface NewSubscription {
  namespace: string;
  /** The full repository name; omitted or null for every repository of the namespace. */
  repository?: string | null;
  title?: string | undefined;
  events: string[];
  filter?: string | null | undefined;
  method: DeliveryMethod;
  url: string;
  /** A `whsec_` secret for a webhook; generated when none is given. */
  secret?: string | null | undefined;
  format?: PayloadFormat | undefined;
  createdBy: string | null;
}

export interface SubscriptionChanges {
  title?: string | undefined;
  events?: string[] | undefined;
  filter?: string | null | undefined;
  url?: string | undefined;
  secret?: string | undefined;
  format?: PayloadFormat | undefined;
  /** true re-enables a disabled subscription and forgets its failures. */
  enabled?: boolean | undefined;
}

export interface SubscriptionStoreOptions {
  db: Database;
  sealedBox: SealedBox;
  /** Why a destination may not be sent to (loopback, private ranges…), or null when it may. */
  destinationProblem?: (url: URL) => string | null;
}

interface SubscriptionRow {
  id: string;
  namespace: string;
  repository: string | null;
  title: string;
  events: string[];
  filter: string | null;
  method: DeliveryMethod;
  sealed_url: string;
  sealed_secret: string | null;
  format: PayloadFormat;
  enabled: boolean;
  disabled_reason: string | null;
  consecutive_failures: number;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const selectSubscriptions = `
  SELECT s.id, ns.name AS namespace, r.name AS repository, s.title, s.events, s.filter, s.method,
         s.sealed_url, s.sealed_secret, s.format, s.enabled, s.disabled_reason, s.consecutive_failures,
         s.created_by, s.created_at, s.updated_at
    FROM subscriptions s
    JOIN accounts ns ON ns.id = s.namespace_id
    LEFT JOIN repositories r ON r.id = s.repository_id`;

/** Standard Webhooks secrets: `whsec_` and the base64 of 24 to 64 random bytes. */
const secretPattern = /^whsec_([A-Za-z0-9+/]{32,88}={0,2})$/;

/**
 * Who hears of which events, and where: subscriptions of a repository or of a whole namespace.
 * Destinations and secrets are sealed at rest and opened only here.
 */
export class SubscriptionStore {
  readonly #db: Database;
  readonly #box: SealedBox;
  readonly #destinationProblem: ((url: URL) => string | null) | undefined;

  constructor(options: SubscriptionStoreOptions) {
    this.#db = options.db;
    this.#box = options.sealedBox;
    this.#destinationProblem = options.destinationProblem;
  }

  async create(input: NewSubscription): Promise<Subscription> {
    const events = checkEvents(input.events);
    const filter = checkFilter(input.filter ?? null, events);
    const url = this.#checkUrl(input.url);
    const format = input.format ?? 'standard';
    if (input.method === 'slack' && format !== 'standard') {
      throw invalid('format applies to webhooks only: Slack receives its own message format');
    }
    const secret = input.method === 'webhook' ? checkSecret(input.secret ?? generateWebhookSecret()) : null;
    if (input.method === 'slack' && input.secret) {
      throw invalid('a Slack subscription has no secret: the incoming-webhook URL is the secret');
    }
    const id = randomUUID();
    await this.#db.transaction(async (tx) => {
      const { namespaceId, repositoryId } = await resolveScope(tx, input.namespace, input.repository ?? null);
      await tx.query(
        `INSERT INTO subscriptions (id, namespace_id, repository_id, title, events, filter, method,
                                    sealed_url, sealed_secret, format, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          id,
          namespaceId,
          repositoryId,
          input.title?.trim() || defaultTitle(input.method, events),
          events,
          filter,
          input.method,
          this.#box.seal(url),
          secret === null ? null : this.#box.seal(secret),
          format,
          input.createdBy,
        ],
      );
    });
    return (await this.get(id))!;
  }

  async get(id: string): Promise<Subscription | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.#db.query<SubscriptionRow>(`${selectSubscriptions} WHERE s.id = $1`, [id]);
    return rows[0] ? this.#open(rows[0]) : null;
  }

  /** A namespace's subscriptions: those of the whole namespace and of each of its repositories. */
  async list(filter: { namespace: string; repository?: string | undefined }): Promise<Subscription[]> {
    const { rows } = await this.#db.query<SubscriptionRow>(
      `${selectSubscriptions}
        WHERE ns.name = $1 AND ($2::text IS NULL OR r.name = $2)
        ORDER BY s.created_at, s.id`,
      [filter.namespace, filter.repository ?? null],
    );
    return rows.map((row) => this.#open(row));
  }

  async update(id: string, changes: SubscriptionChanges): Promise<Subscription> {
    const current = await this.get(id);
    if (!current) throw notFound(`subscription ${id} does not exist`);
    const events = changes.events ? checkEvents(changes.events) : current.events;
    const filter = checkFilter(changes.filter === undefined ? current.filter : changes.filter, events);
    const url = changes.url === undefined ? null : this.#checkUrl(changes.url);
    if (current.method === 'slack' && (changes.secret || (changes.format && changes.format !== 'standard'))) {
      throw invalid('a Slack subscription has no secret and no payload format');
    }
    const secret = changes.secret === undefined ? null : checkSecret(changes.secret);
    await this.#db.query(
      `UPDATE subscriptions SET
         title = COALESCE($2, title),
         events = $3,
         filter = $4,
         sealed_url = COALESCE($5, sealed_url),
         sealed_secret = COALESCE($6, sealed_secret),
         format = COALESCE($7, format),
         enabled = COALESCE($8, enabled),
         disabled_reason = CASE WHEN $8 THEN NULL ELSE disabled_reason END,
         consecutive_failures = CASE WHEN $8 THEN 0 ELSE consecutive_failures END,
         updated_at = now()
       WHERE id = $1`,
      [
        id,
        changes.title?.trim() || null,
        events,
        filter,
        url === null ? null : this.#box.seal(url),
        secret === null ? null : this.#box.seal(secret),
        changes.format ?? null,
        changes.enabled ?? null,
      ],
    );
    return (await this.get(id))!;
  }

  async delete(id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { rowCount } = await this.#db.query('DELETE FROM subscriptions WHERE id = $1', [id]);
    return rowCount > 0;
  }

  #checkUrl(value: string): string {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw invalid(`url ${JSON.stringify(value)} is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw invalid(`url must be http:// or https://, not ${url.protocol}`);
    }
    const problem = this.#destinationProblem?.(url);
    if (problem) throw invalid(problem);
    return url.href;
  }

  #open(row: SubscriptionRow): Subscription {
    return {
      id: row.id,
      namespace: row.namespace,
      repository: row.repository,
      title: row.title,
      events: row.events as EventKind[],
      filter: row.filter,
      method: row.method,
      url: this.#box.open(row.sealed_url),
      secret: row.sealed_secret === null ? null : this.#box.open(row.sealed_secret),
      format: row.format,
      enabled: row.enabled,
      disabledReason: row.disabled_reason,
      consecutiveFailures: row.consecutive_failures,
      createdBy: row.created_by,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

/** A new Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function checkSecret(secret: string): string {
  const match = secretPattern.exec(secret);
  const bytes = match ? Buffer.from(match[1]!, 'base64').length : 0;
  if (!match || bytes < 24 || bytes > 64) {
    throw invalid(
      'secret must be whsec_ and the base64 of 24 to 64 random bytes (leave it out to have one generated)',
    );
  }
  return secret;
}

function checkEvents(events: string[]): EventKind[] {
  if (events.length === 0) throw invalid('events must name at least one event kind');
  const unknown = events.filter((e) => !isEventKind(e));
  if (unknown.length > 0) {
    throw invalid(`unknown event kind ${unknown.join(', ')}; known kinds: ${eventKinds.join(', ')}`);
  }
  return [...new Set(events)] as EventKind[];
}

/** A tag glob for tag events, a ref regex for build events: a filter cannot be both. */
function checkFilter(filter: string | null, events: EventKind[]): string | null {
  if (filter === null || filter === '') return null;
  const targets = new Set(events.map(filterTargetOf));
  if (targets.has('tag') && targets.has('ref')) {
    throw invalid(
      'a filter is a tag glob for repo_push and repo_tag_deleted, or a ref regex for build events: subscribe to them separately',
    );
  }
  if (targets.has('ref')) {
    try {
      new RegExp(filter);
    } catch (error) {
      throw invalid(`filter is not a valid regular expression: ${(error as Error).message}`);
    }
  } else if (targets.has('tag')) {
    if (filter.length > 256) throw invalid('filter is longer than 256 characters');
    picomatch.makeRe(filter);
  } else {
    throw invalid('a filter applies to repo_push, repo_tag_deleted and build events only');
  }
  return filter;
}

/** Whether a subscription's filter lets an event through: any of its tags, or its git ref. */
export function filterMatches(
  filter: string | null,
  kind: EventKind,
  subject: { tags?: string[]; ref?: string },
): boolean {
  if (filter === null) return true;
  const target = filterTargetOf(kind);
  if (target === 'tag') {
    const matches = picomatch(filter);
    return (subject.tags ?? []).some((tag) => matches(tag));
  }
  if (target === 'ref') return subject.ref !== undefined && new RegExp(`^(?:${filter})`).test(subject.ref);
  return true;
}

async function resolveScope(
  q: Queryable,
  namespace: string,
  repository: string | null,
): Promise<{ namespaceId: number; repositoryId: number | null }> {
  const { rows } = await q.query<{ id: number }>(
    `SELECT id FROM accounts WHERE name = $1 AND kind IN ('user', 'organization')`,
    [namespace],
  );
  if (!rows[0]) throw notFound(`namespace ${namespace} does not exist`);
  if (repository === null) return { namespaceId: Number(rows[0].id), repositoryId: null };
  if (!repository.startsWith(`${namespace}/`)) {
    throw invalid(`repository ${repository} is not in namespace ${namespace}`);
  }
  const repo = await q.query<{ id: number }>('SELECT id FROM repositories WHERE name = $1', [repository]);
  if (!repo.rows[0]) throw notFound(`repository ${repository} does not exist`);
  return { namespaceId: Number(rows[0].id), repositoryId: Number(repo.rows[0].id) };
}

function defaultTitle(method: DeliveryMethod, events: EventKind[]): string {
  const what = events.length > 3 ? `${events.length} kinds of event` : events.join(', ');
  return `${method === 'slack' ? 'Slack' : 'Webhook'}: ${what}`;
}
