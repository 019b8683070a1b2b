import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../db/database.ts';
import { isUuid } from '../db/uuid.ts';
import { notFound } from '../errors.ts';
import type { SealedBox } from '../identity/sealed-box.ts';
import type { TriggerChanges, TriggerProvider, TriggerSettings } from './trigger-settings.ts';

/** How the builder authenticates its clone; the secret itself is never shown. */
export type CloneCredentialsShown =
  { kind: 'token'; username: string | null } | { kind: 'deploy-key' } | null;

/**
 * What Slipway registered on the GitLab project of a trigger it set up there: what replacing the secret
 * updates and deleting the trigger removes. The API token is never shown, only whether it is kept.
 */
export interface GitLabLink {
  /** The GitLab instance, e.g. https://gitlab.example.com. */
  apiUrl: string;
  projectId: number;
  /** group/subgroup/app, as GitLab named it at setup. */
  projectPath: string;
  hookId: number;
  /** False when the project had a hook with the trigger's URL already: it was updated instead. */
  hookCreated: boolean;
  deployKeyId: number | null;
  /** False when the project had the key already; null without a deploy key. */
  deployKeyCreated: boolean | null;
  tlsVerify: boolean;
  /** Whether the API token is kept (sealed), so Slipway can update and remove what it registered. */
  tokenStored: boolean;
  /** The URL the hook was registered (or last synced) with; null when set up before this was recorded. */
  hookUrl: string | null;
  /** Why the last sync with GitLab failed; null once one succeeds. */
  syncProblem: string | null;
}

/** What a sync with GitLab changed; absent fields stay as they were. */
export interface GitLabSyncRecord {
  hookId: number;
  hookUrl: string;
  /** Set when the hook was added again: it is then Slipway's. */
  hookCreated?: boolean;
  deployKeyId?: number;
  deployKeyCreated?: boolean;
}

/** A build trigger as it is shown: never its secrets. */
export interface Trigger {
  id: string;
  /** The repository its builds push to, e.g. acme/api. */
  repository: string;
  namespace: string;
  provider: TriggerProvider;
  cloneUrl: string;
  credentials: CloneCredentialsShown;
  /** The SSH server's host keys (OpenSSH known_hosts text) its clones accept; null: not checked. */
  knownHosts: string | null;
  refFilter: string | null;
  dockerfile: string;
  context: string;
  buildArgs: Record<string, string>;
  tagTemplates: string[];
  latestOnDefaultBranch: boolean;
  enabled: boolean;
  /** The robot account (namespace+name) whose read access builds also pull with; null for none. */
  pullRobot: string | null;
  /** Set up on GitLab by Slipway: what it registered there; null otherwise. */
  gitlab: GitLabLink | null;
  /** Why it is disabled: by whom, or after how many failed builds in a row. */
  disabledReason: string | null;
  failuresInARow: number;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a builder clones with, opened: for the build that needs it only. */
export interface CloneSecrets {
  username?: string;
  token?: string;
  deployKey?: string;
  /** Not a secret, but what SSH clones go with: the host keys (known_hosts text) the server must present. */
  knownHosts?: string;
}

interface TriggerRow {
  id: string;
  repository: string;
  provider: TriggerProvider;
  clone_url: string;
  webhook_secret_sealed: string;
  clone_username: string | null;
  clone_token_sealed: string | null;
  deploy_key_sealed: string | null;
  known_hosts: string | null;
  ref_filter: string | null;
  dockerfile: string;
  context: string;
  build_args: Record<string, string>;
  tag_templates: string[];
  latest_on_default_branch: boolean;
  enabled: boolean;
  disabled_reason: string | null;
  failures_in_a_row: number;
  pull_robot: string | null;
  gitlab_api_url: string | null;
  gitlab_project_id: number | null;
  gitlab_project_path: string | null;
  gitlab_hook_id: number | null;
  gitlab_hook_created: boolean | null;
  gitlab_deploy_key_id: number | null;
  gitlab_deploy_key_created: boolean | null;
  gitlab_tls_verify: boolean | null;
  gitlab_token_sealed: string | null;
  gitlab_hook_url: string | null;
  gitlab_sync_problem: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const selectTriggers = `
  SELECT t.*, r.name AS repository, pr.name AS pull_robot FROM build_triggers t
    JOIN repositories r ON r.id = t.repository_id LEFT JOIN accounts pr ON pr.id = t.pull_robot_id`;

/** The id of the robot account of that name (a parameter placeholder), or null. */
const robotIdNamed = (parameter: string) =>
  `(SELECT id FROM accounts WHERE name = ${parameter} AND kind = 'robot')`;

/** Builds failing in a row after which a trigger disables itself, saying why. */
export const defaultFailureLimit = 5;

/** A new webhook secret: what GitHub signs with, GitLab sends, and the post-receive hook signs with. */
function newWebhookSecret(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Build triggers, in the database every replica shares. Webhook secrets and clone credentials are
 * sealed; the webhook secret is shown once, when the trigger is created (or its secret replaced).
 */
export class TriggerStore {
  readonly #db: Database;
  readonly #box: SealedBox;
  readonly #failureLimit: number;

  constructor(db: Database, box: SealedBox, options: { failureLimit?: number } = {}) {
    this.#db = db;
    this.#box = box;
    this.#failureLimit = options.failureLimit ?? defaultFailureLimit;
  }

  /**
   * Creates a trigger for the repository (created when missing); the trigger and its webhook secret.
   * `settings.gitlab` is not kept here: setGitLab records what setting up the project registered.
   */
  async create(
    repository: string,
    settings: TriggerSettings,
    createdBy: string | null,
  ): Promise<{ trigger: Trigger; webhookSecret: string }> {
    const webhookSecret = newWebhookSecret();
    const credentials = this.#sealedCredentials(settings.credentials);
    const id = await this.#db.transaction(async (tx) => {
      await tx.query('INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [
        repository,
      ]);
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO build_triggers (repository_id, provider, clone_url, webhook_secret_sealed, clone_username,
           clone_token_sealed, deploy_key_sealed, ref_filter, dockerfile, context, build_args, tag_templates,
           latest_on_default_branch, enabled, disabled_reason, created_by, known_hosts)
         SELECT r.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13, $14, $15, $16, $17
           FROM repositories r WHERE r.name = $1
         RETURNING id`,
        [
          repository,
          settings.provider,
          // A GitLab trigger may take its clone URL from the project, once it is set up (setGitLab).
          settings.cloneUrl ?? '',
          this.#box.seal(webhookSecret),
          credentials.username,
          credentials.token,
          credentials.deployKey,
          settings.refFilter ?? null,
          settings.dockerfile,
          settings.context,
          JSON.stringify(settings.buildArgs),
          JSON.stringify(settings.tagTemplates),
          settings.latestOnDefaultBranch,
          settings.enabled,
          settings.enabled ? null : disabledBy(createdBy),
          createdBy,
          settings.knownHosts ?? null,
        ],
      );
      const triggerId = rows[0]!.id;
      if (settings.pullRobot) {
        await tx.query(`UPDATE build_triggers SET pull_robot_id = ${robotIdNamed('$2')} WHERE id = $1`, [
          triggerId,
          settings.pullRobot,
        ]);
      }
      return triggerId;
    });
    return { trigger: (await this.get(id))!, webhookSecret };
  }

  /** The trigger; null when there is none (or the id is not a trigger id at all). */
  async get(id: string): Promise<Trigger | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.#db.query<TriggerRow>(`${selectTriggers} WHERE t.id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** The triggers of a repository, or of every repository of a namespace, oldest first. */
  async list(scope: { repository: string } | { namespace: string }): Promise<Trigger[]> {
    const { rows } =
      'repository' in scope
        ? await this.#db.query<TriggerRow>(`${selectTriggers} WHERE r.name = $1 ORDER BY t.created_at`, [
            scope.repository,
          ])
        : await this.#db.query<TriggerRow>(
            `${selectTriggers} WHERE r.name LIKE $1 || '/%' ORDER BY r.name, t.created_at`,
            [scope.namespace.replace(/[\\%_]/g, '\\$&')],
          );
    return rows.map(fromRow);
  }

  /** Applies the changes; the trigger as it now is, or null when there is none. */
  async update(id: string, changes: TriggerChanges, changedBy: string | null): Promise<Trigger | null> {
    const current = await this.get(id);
    if (!current) return null;
    const sets: string[] = [];
    const values: unknown[] = [id];
    const set = (column: string, value: unknown, cast = '') => {
      values.push(value);
      sets.push(`${column} = $${values.length}${cast}`);
    };
    if (changes.cloneUrl !== undefined) set('clone_url', changes.cloneUrl);
    if (changes.credentials !== undefined) {
      const sealed = this.#sealedCredentials(changes.credentials ?? undefined);
      set('clone_username', sealed.username);
      set('clone_token_sealed', sealed.token);
      set('deploy_key_sealed', sealed.deployKey);
    }
    if (changes.knownHosts !== undefined) set('known_hosts', changes.knownHosts);
    if (changes.refFilter !== undefined) set('ref_filter', changes.refFilter);
    if (changes.pullRobot !== undefined) {
      values.push(changes.pullRobot);
      sets.push(`pull_robot_id = ${robotIdNamed(`$${values.length}`)}`);
    }
    if (changes.dockerfile !== undefined) set('dockerfile', changes.dockerfile);
    if (changes.context !== undefined) set('context', changes.context);
    if (changes.buildArgs !== undefined) set('build_args', JSON.stringify(changes.buildArgs), '::jsonb');
    if (changes.tagTemplates !== undefined) {
      set('tag_templates', JSON.stringify(changes.tagTemplates), '::jsonb');
    }
    if (changes.latestOnDefaultBranch !== undefined) {
      set('latest_on_default_branch', changes.latestOnDefaultBranch);
    }
    if (changes.gitlabToken !== undefined) {
      set('gitlab_token_sealed', changes.gitlabToken === null ? null : this.#box.seal(changes.gitlabToken));
    }
    if (changes.enabled !== undefined && changes.enabled !== current.enabled) {
      set('enabled', changes.enabled);
      set('disabled_reason', changes.enabled ? null : disabledBy(changedBy));
      if (changes.enabled) set('failures_in_a_row', 0);
    }
    if (sets.length > 0) {
      await this.#db.query(
        `UPDATE build_triggers SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`,
        values,
      );
    }
    return this.get(id);
  }

  async delete(id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { rowCount } = await this.#db.query('DELETE FROM build_triggers WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  }

  /** Replaces the webhook secret: deliveries signed with the old one are refused from now on. */
  async replaceWebhookSecret(id: string): Promise<string> {
    const secret = newWebhookSecret();
    const { rowCount } = await this.#db.query(
      'UPDATE build_triggers SET webhook_secret_sealed = $2, updated_at = now() WHERE id = $1',
      [id, this.#box.seal(secret)],
    );
    if (!rowCount) throw notFound(`no build trigger ${id}`);
    return secret;
  }

  /** The secret deliveries to the trigger are checked with; null when there is no such trigger. */
  async webhookSecret(id: string): Promise<string | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.#db.query<{ sealed: string }>(
      'SELECT webhook_secret_sealed AS sealed FROM build_triggers WHERE id = $1',
      [id],
    );
    return rows[0] ? this.#box.open(rows[0].sealed) : null;
  }

  /**
   * Records what setting up the GitLab project registered, with the API token to keep (sealed; null keeps
   * none) and, when given, the clone URL and the generated deploy key the builder clones with.
   */
  async setGitLab(
    id: string,
    link: Omit<GitLabLink, 'tokenStored' | 'syncProblem'>,
    options: { token: string | null; cloneUrl?: string; deployKey?: string },
  ): Promise<Trigger> {
    const values: unknown[] = [
      id,
      link.apiUrl,
      link.projectId,
      link.projectPath,
      link.hookId,
      link.hookCreated,
      link.deployKeyId,
      link.deployKeyCreated,
      link.tlsVerify,
      options.token === null ? null : this.#box.seal(options.token),
      link.hookUrl,
    ];
    const sets = [
      'gitlab_api_url = $2',
      'gitlab_project_id = $3',
      'gitlab_project_path = $4',
      'gitlab_hook_id = $5',
      'gitlab_hook_created = $6',
      'gitlab_deploy_key_id = $7',
      'gitlab_deploy_key_created = $8',
      'gitlab_tls_verify = $9',
      'gitlab_token_sealed = $10',
      'gitlab_hook_url = $11',
      'gitlab_sync_problem = NULL',
    ];
    if (options.cloneUrl !== undefined) {
      values.push(options.cloneUrl);
      sets.push(`clone_url = $${values.length}`);
    }
    if (options.deployKey !== undefined) {
      values.push(this.#box.seal(options.deployKey));
      sets.push(
        `deploy_key_sealed = $${values.length}`,
        'clone_token_sealed = NULL',
        'clone_username = NULL',
      );
    }
    const { rowCount } = await this.#db.query(
      `UPDATE build_triggers SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`,
      values,
    );
    if (!rowCount) throw notFound(`no build trigger ${id}`);
    return (await this.get(id))!;
  }

  /** Records a sync with GitLab that succeeded (and forgets an earlier failure); with a token, keeps it. */
  async recordGitLabSync(id: string, sync: GitLabSyncRecord, token?: string): Promise<Trigger | null> {
    const values: unknown[] = [id, sync.hookId, sync.hookUrl];
    const sets = ['gitlab_hook_id = $2', 'gitlab_hook_url = $3', 'gitlab_sync_problem = NULL'];
    const set = (column: string, value: unknown) => {
      values.push(value);
      sets.push(`${column} = $${values.length}`);
    };
    if (sync.hookCreated !== undefined) set('gitlab_hook_created', sync.hookCreated);
    if (sync.deployKeyId !== undefined) set('gitlab_deploy_key_id', sync.deployKeyId);
    if (sync.deployKeyCreated !== undefined) set('gitlab_deploy_key_created', sync.deployKeyCreated);
    if (token !== undefined) set('gitlab_token_sealed', this.#box.seal(token));
    await this.#db.query(
      `UPDATE build_triggers SET ${sets.join(', ')}, updated_at = now()
         WHERE id = $1 AND gitlab_api_url IS NOT NULL`,
      values,
    );
    return this.get(id);
  }

  /** Records why a sync with GitLab failed: shown on the trigger until one succeeds. */
  async recordGitLabSyncProblem(id: string, problem: string): Promise<void> {
    await this.#db.query(
      'UPDATE build_triggers SET gitlab_sync_problem = $2 WHERE id = $1 AND gitlab_api_url IS NOT NULL',
      [id, problem],
    );
  }

  /** Every trigger Slipway set up on GitLab, of every repository. */
  async listSetUpOnGitLab(): Promise<Trigger[]> {
    const { rows } = await this.#db.query<TriggerRow>(
      `${selectTriggers} WHERE t.gitlab_api_url IS NOT NULL ORDER BY t.created_at`,
    );
    return rows.map(fromRow);
  }

  /** The GitLab API token kept for a trigger Slipway set up on GitLab, opened; null when none is kept. */
  async gitlabToken(id: string): Promise<string | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.#db.query<{ sealed: string | null }>(
      'SELECT gitlab_token_sealed AS sealed FROM build_triggers WHERE id = $1',
      [id],
    );
    const sealed = rows[0]?.sealed;
    return sealed ? this.#box.open(sealed) : null;
  }

  /** What the trigger's builds clone with, opened, and the host keys they accept. */
  async cloneSecrets(id: string): Promise<CloneSecrets> {
    const { rows } = await this.#db.query<
      Pick<TriggerRow, 'clone_username' | 'clone_token_sealed' | 'deploy_key_sealed' | 'known_hosts'>
    >(
      'SELECT clone_username, clone_token_sealed, deploy_key_sealed, known_hosts FROM build_triggers WHERE id = $1',
      [id],
    );
    const row = rows[0];
    if (!row) return {};
    return {
      ...(row.clone_username !== null && { username: row.clone_username }),
      ...(row.clone_token_sealed !== null && { token: this.#box.open(row.clone_token_sealed) }),
      ...(row.deploy_key_sealed !== null && { deployKey: this.#box.open(row.deploy_key_sealed) }),
      ...(row.known_hosts !== null && { knownHosts: row.known_hosts }),
    };
  }

  /**
   * Counts a build of the trigger that ended: a success resets the count of failures in a row; the
   * failure that reaches the limit disables the trigger, saying why. True when this disabled it.
   */
  async recordOutcome(tx: Queryable, id: string, succeeded: boolean, error?: string): Promise<boolean> {
    if (succeeded) {
      await tx.query('UPDATE build_triggers SET failures_in_a_row = 0 WHERE id = $1', [id]);
      return false;
    }
    const { rows } = await tx.query<{ disabled: boolean }>(
      `UPDATE build_triggers SET failures_in_a_row = failures_in_a_row + 1,
         enabled = CASE WHEN enabled AND failures_in_a_row + 1 >= $2 THEN false ELSE enabled END,
         disabled_reason = CASE WHEN enabled AND failures_in_a_row + 1 >= $2 THEN $3 ELSE disabled_reason END
       WHERE id = $1
       RETURNING (NOT enabled AND failures_in_a_row = $2) AS disabled`,
      [
        id,
        this.#failureLimit,
        `disabled after ${this.#failureLimit} failed builds in a row; the last: ${(error ?? 'unknown error').slice(0, 500)}`,
      ],
    );
    return rows[0]?.disabled ?? false;
  }

  #sealedCredentials(credentials: TriggerSettings['credentials']): {
    username: string | null;
    token: string | null;
    deployKey: string | null;
  } {
    if (!credentials) return { username: null, token: null, deployKey: null };
    if ('deployKey' in credentials) {
      return { username: null, token: null, deployKey: this.#box.seal(credentials.deployKey) };
    }
    return {
      username: credentials.username ?? null,
      token: this.#box.seal(credentials.token),
      deployKey: null,
    };
  }
}

function disabledBy(actor: string | null): string {
  return actor ? `disabled by ${actor}` : 'disabled';
}

function fromRow(row: TriggerRow): Trigger {
  return {
    id: row.id,
    repository: row.repository,
    namespace: row.repository.slice(0, row.repository.indexOf('/')),
    provider: row.provider,
    cloneUrl: row.clone_url,
    credentials:
      row.deploy_key_sealed !== null
        ? { kind: 'deploy-key' }
        : row.clone_token_sealed !== null
          ? { kind: 'token', username: row.clone_username }
          : null,
    knownHosts: row.known_hosts,
    refFilter: row.ref_filter,
    dockerfile: row.dockerfile,
    context: row.context,
    buildArgs: row.build_args,
    tagTemplates: row.tag_templates,
    latestOnDefaultBranch: row.latest_on_default_branch,
    enabled: row.enabled,
    pullRobot: row.pull_robot,
    gitlab: gitlabLinkOf(row),
    disabledReason: row.disabled_reason,
    failuresInARow: row.failures_in_a_row,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function gitlabLinkOf(row: TriggerRow): GitLabLink | null {
  if (row.gitlab_api_url === null || row.gitlab_project_id === null || row.gitlab_hook_id === null) {
    return null;
  }
  return {
    apiUrl: row.gitlab_api_url,
    projectId: row.gitlab_project_id,
    projectPath: row.gitlab_project_path ?? String(row.gitlab_project_id),
    hookId: row.gitlab_hook_id,
    hookCreated: row.gitlab_hook_created ?? false,
    deployKeyId: row.gitlab_deploy_key_id,
    deployKeyCreated: row.gitlab_deploy_key_created,
    tlsVerify: row.gitlab_tls_verify ?? true,
    tokenStored: row.gitlab_token_sealed !== null,
    hookUrl: row.gitlab_hook_url,
    syncProblem: row.gitlab_sync_problem,
  };
}
