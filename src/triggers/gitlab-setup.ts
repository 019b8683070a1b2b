import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  DeployKeys,
  GitbeakerRequestError,
  GitbeakerRetryError,
  GitbeakerTimeoutError,
  ProjectHooks,
  Projects,
} from '@gitbeaker/rest';
import { SlipwayError } from '../errors.ts';

/*
 * Setting up a GitLab project for a build trigger with the user's GitLab API token: the project webhook
 * that sends push and tag push events to `<publicUrl>/webhooks/gitlab/<triggerId>` with the trigger's
 * secret as its "Secret token" (checked as X-Gitlab-Token, see gitlab.ts), and a read-only deploy key the
 * builder clones with. Registering again is safe: the hook with the same URL is updated rather than
 * duplicated, and a deploy key GitLab already has for the project is reused.
 *
 * The API token is used for these calls only and never appears in an error: GitLab's own error objects
 * (which hold the request, and so its PRIVATE-TOKEN header) are never passed on as causes.
 */

export interface GitLabApiAccess {
  /** The GitLab instance, e.g. https://gitlab.example.com (a trailing /api/v4 is accepted too). */
  apiUrl: string;
  /** A personal, group or project access token with the `api` scope. */
  token: string;
  /** How long each API call may take; 30 s by default. */
  timeoutMs?: number;
}

/** A project's numeric ID, or its full path such as `group/subgroup/app`. */
export type GitLabProjectRef = number | string;

export interface RegisterGitLabProjectOptions extends GitLabApiAccess {
  project: GitLabProjectRef;
  /** `<publicUrl>/webhooks/gitlab/<triggerId>`. */
  webhookUrl: string;
  /** The trigger's webhook secret: GitLab sends it in X-Gitlab-Token. */
  webhookSecret: string;
  /** A public key (`ssh-ed25519 AAAA… comment`) to add as a read-only deploy key. */
  deployKey?: { title: string; publicKey: string };
  /** Whether GitLab verifies the webhook URL's TLS certificate (enable_ssl_verification); true by default. */
  tlsVerify?: boolean;
}

export interface GitLabProjectRegistration {
  projectId: number;
  /** The project's full path, e.g. group/subgroup/app. */
  projectPath: string;
  hookId: number;
  /** False when a hook with the same URL was there already, and was updated instead. */
  hookCreated: boolean;
  deployKeyId?: number;
  /** False when the project already had this key; unregistering should then leave it. */
  deployKeyCreated?: boolean;
  cloneUrls: { http: string; ssh: string };
  /** Null for a project without commits. */
  defaultBranch: string | null;
}

export interface UnregisterGitLabProjectOptions extends GitLabApiAccess {
  project: GitLabProjectRef;
  /** The hook registerGitLabProject returned. */
  hookId?: number;
  /** Without hookId: removes every hook of the project with this URL. */
  webhookUrl?: string;
  /** The deploy key registerGitLabProject added (deployKeyCreated). */
  deployKeyId?: number;
}

export interface GitLabProjectUnregistration {
  /** Hooks removed; 0 when they were gone already. */
  hooksRemoved: number;
  deployKeyRemoved: boolean;
}

/**
 * What went wrong setting up GitLab, saying what to do about it. `statusCode` is what the API answers: 400
 * when the input, the token, the project or its settings need changing, 502 when GitLab failed or was out
 * of reach. `gitlabStatus` is GitLab's HTTP status, when it answered.
 */
export class GitLabSetupError extends SlipwayError {
  readonly statusCode: number;
  readonly gitlabStatus: number | undefined;
  constructor(message: string, options: { gitlabStatus?: number; unreachable?: boolean } = {}) {
    super('SLW_ERR_GITLAB_SETUP', message);
    const { gitlabStatus } = options;
    this.gitlabStatus = gitlabStatus;
    const refused = gitlabStatus !== undefined && gitlabStatus >= 400 && gitlabStatus < 500;
    this.statusCode = refused || (gitlabStatus === undefined && !options.unreachable) ? 400 : 502;
  }
}

const defaultTimeoutMs = 30_000;
const perPage = 100;

/**
 * Finds the project, then adds (or updates) its webhook for push and tag push events and, when given,
 * its read-only deploy key. Throws GitLabSetupError.
 */
export async function registerGitLabProject(
  options: RegisterGitLabProjectOptions,
): Promise<GitLabProjectRegistration> {
  checkHookOptions(options);
  const gitlab = connect(options, [options.webhookSecret]);
  const project = await findProject(gitlab, options.project);
  const hook = await ensureHook(gitlab, project, options);
  const registration: GitLabProjectRegistration = {
    projectId: project.id,
    projectPath: project.path,
    hookId: hook.id,
    hookCreated: hook.created,
    cloneUrls: { http: project.httpUrl, ssh: project.sshUrl },
    defaultBranch: project.defaultBranch,
  };
  if (options.deployKey) {
    const key = await ensureDeployKey(gitlab, project, options.deployKey);
    registration.deployKeyId = key.id;
    registration.deployKeyCreated = key.created;
  }
  return registration;
}

/**
 * Removes the hook (by ID, or every hook with the URL) and the deploy key registerGitLabProject added.
 * What is gone already is not an error, so this can be repeated. Throws GitLabSetupError.
 */
export async function unregisterGitLabProject(
  options: UnregisterGitLabProjectOptions,
): Promise<GitLabProjectUnregistration> {
  const gitlab = connect(options);
  const project = await findProject(gitlab, options.project);
  let hookIds: number[] = [];
  if (options.hookId !== undefined) {
    hookIds = [options.hookId];
  } else if (options.webhookUrl !== undefined) {
    const hooks = await gitlab.call('list the webhooks of', project.label, () =>
      gitlab.hooks.all(project.id, { perPage }),
    );
    hookIds = hooks.filter((h) => h.url === options.webhookUrl).map((h) => h.id);
  }
  let hooksRemoved = 0;
  for (const hookId of hookIds) {
    const removed = await gitlab.callUnlessGone('remove the webhook of', project.label, () =>
      gitlab.hooks.remove(project.id, hookId),
    );
    if (removed) hooksRemoved += 1;
  }
  let deployKeyRemoved = false;
  if (options.deployKeyId !== undefined) {
    const deployKeyId = options.deployKeyId;
    deployKeyRemoved = await gitlab.callUnlessGone('remove the deploy key of', project.label, () =>
      gitlab.deployKeys.remove(project.id, deployKeyId),
    );
  }
  return { hooksRemoved, deployKeyRemoved };
}

export interface SyncGitLabProjectOptions extends GitLabApiAccess {
  project: GitLabProjectRef;
  /** The hook registered before: updated in place, or added again when GitLab no longer has it. */
  hookId: number;
  /** Where the hook is to post now: `<publicUrl>/webhooks/gitlab/<triggerId>`. */
  webhookUrl: string;
  webhookSecret: string;
  tlsVerify?: boolean;
  /** The deploy key the builder clones with: added again when the project no longer has it. */
  deployKey?: { title: string; publicKey: string };
}

export interface GitLabProjectSync {
  hookId: number;
  /** True when the hook was gone and a new one was added (or one with the URL adopted). */
  hookRecreated: boolean;
  deployKeyId?: number;
  deployKeyRecreated?: boolean;
}

/**
 * Brings what Slipway registered on the project up to date: the hook posts to `webhookUrl` with the
 * secret (re-added when it was deleted in GitLab), and the deploy key is there (re-added when deleted).
 * Throws GitLabSetupError.
 */
export async function syncGitLabProject(options: SyncGitLabProjectOptions): Promise<GitLabProjectSync> {
  checkHookOptions(options);
  const gitlab = connect(options, [options.webhookSecret]);
  const project = await findProject(gitlab, options.project);
  const updated = await gitlab.callUnlessGone('update the webhook of', project.label, () =>
    gitlab.hooks.edit(project.id, options.hookId, options.webhookUrl, hookSettings(options)),
  );
  // Gone: deleted in GitLab. One posting to the URL already (added by hand) is adopted, not duplicated.
  const hook = updated ? { id: options.hookId } : await ensureHook(gitlab, project, options);
  const sync: GitLabProjectSync = { hookId: hook.id, hookRecreated: !updated };
  if (options.deployKey) {
    const key = await ensureDeployKey(gitlab, project, options.deployKey);
    sync.deployKeyId = key.id;
    sync.deployKeyRecreated = key.created;
  }
  return sync;
}

type HookOptions = Pick<RegisterGitLabProjectOptions, 'webhookUrl' | 'webhookSecret' | 'tlsVerify'>;

/** Refuses what GitLab would refuse (or accept, uselessly), before calling it. */
function checkHookOptions(options: HookOptions & Pick<RegisterGitLabProjectOptions, 'deployKey'>): void {
  if (options.webhookSecret === '') {
    throw new GitLabSetupError('the trigger has no webhook secret to give GitLab');
  }
  if (!/^https?:\/\/[^/]/.test(options.webhookUrl)) {
    throw new GitLabSetupError('the webhook URL must be an http:// or https:// URL GitLab can reach');
  }
  if (options.deployKey && !keyMaterial(options.deployKey.publicKey)) {
    throw new GitLabSetupError(
      'the deploy key is not an SSH public key: expected one line such as "ssh-ed25519 AAAA… comment"',
    );
  }
}

function hookSettings(options: HookOptions) {
  return {
    pushEvents: true,
    tagPushEvents: true,
    token: options.webhookSecret,
    enableSslVerification: options.tlsVerify ?? true,
  };
}

/** Updates the project's hook with the URL, or adds one. */
async function ensureHook(
  gitlab: Connection,
  project: FoundProject,
  options: HookOptions,
): Promise<{ id: number; created: boolean }> {
  const hook = hookSettings(options);
  const hooks = await gitlab.call('list the webhooks of', project.label, () =>
    gitlab.hooks.all(project.id, { perPage }),
  );
  const existing = hooks.find((h) => h.url === options.webhookUrl);
  if (existing) {
    await gitlab.call('update the webhook of', project.label, () =>
      gitlab.hooks.edit(project.id, existing.id, options.webhookUrl, hook),
    );
    return { id: existing.id, created: false };
  }
  const added = await gitlab.call('add a webhook to', project.label, () =>
    gitlab.hooks.add(project.id, options.webhookUrl, hook),
  );
  return { id: added.id, created: true };
}

/** The project's deploy key with this key material, or a new read-only one. */
async function ensureDeployKey(
  gitlab: Connection,
  project: FoundProject,
  deployKey: { title: string; publicKey: string },
): Promise<{ id: number; created: boolean }> {
  const material = keyMaterial(deployKey.publicKey);
  const keys = await gitlab.call('list the deploy keys of', project.label, () =>
    gitlab.deployKeys.all({ projectId: project.id, perPage }),
  );
  const same = keys.find((k) => keyMaterial(k.key) === material);
  if (same) return { id: same.id, created: false };
  const added = await gitlab.call('add a deploy key to', project.label, () =>
    gitlab.deployKeys.create(project.id, deployKey.title, deployKey.publicKey.trim(), { canPush: false }),
  );
  return { id: added.id, created: true };
}

// --- the GitLab API ---

interface FoundProject {
  id: number;
  path: string;
  /** How errors name it: "group/app" */
  label: string;
  httpUrl: string;
  sshUrl: string;
  defaultBranch: string | null;
}

type Connection = ReturnType<typeof connect>;

function connect(access: GitLabApiAccess, otherSecrets: string[] = []) {
  const host = gitLabHost(access.apiUrl);
  if (access.token === '') throw new GitLabSetupError('no GitLab API token was given');
  const timeoutMs = access.timeoutMs ?? defaultTimeoutMs;
  const config = { host, token: access.token, queryTimeout: timeoutMs };
  // Neither is ever sent back by GitLab; redacting them is belt and braces.
  const secrets = [access.token, ...otherSecrets].filter((secret) => secret !== '');
  const call = async <T>(action: string, project: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await request();
    } catch (error) {
      throw setupError(error, { host, action, project, timeoutMs, secrets });
    }
  };
  return {
    host,
    projects: new Projects(config),
    hooks: new ProjectHooks(config),
    deployKeys: new DeployKeys(config),
    call,
    /** True when it removed something, false when GitLab answered 404 (gone already). */
    async callUnlessGone(action: string, project: string, request: () => Promise<unknown>): Promise<boolean> {
      try {
        await call(action, project, request);
        return true;
      } catch (error) {
        if (error instanceof GitLabSetupError && error.gitlabStatus === 404) return false;
        throw error;
      }
    },
  };
}

async function findProject(gitlab: Connection, ref: GitLabProjectRef): Promise<FoundProject> {
  const id = projectId(ref);
  const label = String(id);
  const project = await gitlab.call('find project', label, () => gitlab.projects.show(id));
  return {
    id: project.id,
    path: project.path_with_namespace,
    label: project.path_with_namespace,
    httpUrl: project.http_url_to_repo,
    sshUrl: project.ssh_url_to_repo,
    defaultBranch: project.default_branch || null,
  };
}

/** The instance's base URL, as gitbeaker wants it (it appends /api/v4 itself). */
function gitLabHost(apiUrl: string): string {
  let url: URL;
  try {
    url = new URL(apiUrl.trim());
  } catch {
    throw new GitLabSetupError(
      'the GitLab URL is not a URL: give its address, such as https://gitlab.example.com',
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new GitLabSetupError(`the GitLab URL must be http:// or https://, not ${url.protocol}`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new GitLabSetupError(
      'the GitLab URL must be the instance address only, without credentials, query or fragment',
    );
  }
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v4$/, '');
  return `${url.origin}${path}`;
}

/** A numeric ID as a number; a path without surrounding slashes or a trailing .git (GitLab allows neither). */
function projectId(ref: GitLabProjectRef): number | string {
  if (typeof ref === 'number') return ref;
  const trimmed = ref
    .trim()
    .replace(/^\/+|\/+$/g, '')
    .replace(/\.git$/, '');
  if (trimmed === '') throw new GitLabSetupError('no GitLab project was given');
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

interface ErrorContext {
  host: string;
  /** "add a webhook to" */
  action: string;
  project: string;
  timeoutMs: number;
  secrets: string[];
}

function setupError(error: unknown, context: ErrorContext): GitLabSetupError {
  const { host, action, project } = context;
  const redact = (text: string) =>
    context.secrets.reduce((result, secret) => result.replaceAll(secret, '[redacted]'), text);
  const make = (message: string, status?: number) =>
    new GitLabSetupError(
      redact(message),
      status === undefined ? { unreachable: true } : { gitlabStatus: status },
    );
  if (error instanceof GitLabSetupError) return error;
  if (error instanceof GitbeakerRequestError) {
    const cause = error.cause as { description?: unknown; response?: { status?: unknown } } | undefined;
    const status = typeof cause?.response?.status === 'number' ? cause.response.status : undefined;
    const said = typeof cause?.description === 'string' && cause.description ? cause.description : '';
    const saying = said ? `: ${said}` : '';
    const findingProject = action === 'find project';
    switch (status) {
      case 401:
        return make(
          `GitLab at ${host} refused the API token (401 Unauthorized): it is wrong, expired or revoked. ` +
            'Create a personal, group or project access token with the "api" scope and give that one.',
          status,
        );
      case 403:
        return make(
          findingProject
            ? `GitLab at ${host} does not let the API token read project ${project} (403 Forbidden${saying}): ` +
                'give a token with the "api" scope, whose user is a member of the project.'
            : `GitLab at ${host} does not let the API token ${action} ${project} (403 Forbidden${saying}): ` +
                'webhooks and deploy keys need at least the Maintainer role on the project, and a token with the "api" scope.',
          status,
        );
      case 404:
        return make(
          findingProject
            ? `GitLab at ${host} has no project ${project} that the API token can see (404 Not Found): check the ` +
                "project's full path (group/subgroup/project, as in its URL) or its numeric ID, and that the " +
                "token's user is a member: GitLab answers 404 for private projects a token cannot see."
            : `GitLab at ${host} could not ${action} ${project} (404 Not Found${saying}).`,
          status,
        );
      case 400:
      case 422: {
        const blocked = /blocked|local network/i.test(said)
          ? ' GitLab refuses webhooks to local network addresses unless an administrator allows "requests to ' +
            'the local network from webhooks and integrations" (Admin area > Settings > Network > Outbound requests).'
          : '';
        return make(
          `GitLab at ${host} refused to ${action} ${project} (${status}${saying}).${blocked}`,
          status,
        );
      }
      default:
        return make(
          `GitLab at ${host} failed to ${action} ${project} (${status ?? 'no status'}${saying}); try again later.`,
          status,
        );
    }
  }
  if (error instanceof GitbeakerTimeoutError) {
    return make(
      `GitLab at ${host} did not answer within ${context.timeoutMs / 1000} s when asked to ${action} ${project}.`,
    );
  }
  if (error instanceof GitbeakerRetryError) {
    return make(`GitLab at ${host} is overloaded or unavailable: ${error.message}`);
  }
  // fetch() failing: DNS, connection refused, TLS.
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const reason =
    (typeof cause?.code === 'string' && cause.code) ||
    (typeof cause?.message === 'string' && cause.message) ||
    (error instanceof Error ? error.message : String(error));
  const tls = /CERT|SSL|TLS|self[- ]signed/i.test(reason)
    ? ' If GitLab uses a private CA, add it to the gateway with NODE_EXTRA_CA_CERTS.'
    : '';
  return make(`could not reach GitLab at ${host} to ${action} ${project}: ${reason}.${tls}`);
}

/** "ssh-ed25519 AAAA…" without the comment, or null when `line` is not an SSH public key. */
function keyMaterial(line: string): string | null {
  const [type, blob] = line.trim().split(/\s+/);
  if (!type || !blob || !/^(ssh-|ecdsa-|sk-)[a-z0-9@.-]+$/i.test(type) || !/^[A-Za-z0-9+/]+=*$/.test(blob)) {
    return null;
  }
  return `${type} ${blob}`;
}

// --- deploy keys ---

export interface SshDeployKeyPair {
  /** An unencrypted OpenSSH private key ("-----BEGIN OPENSSH PRIVATE KEY-----"), as ssh and git read it. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment`: what GitLab is given. */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -l` and GitLab's fingerprint_sha256 show it. */
  fingerprint: string;
}

/**
 * A new Ed25519 key pair for a trigger that clones over SSH and has no key of its own. node:crypto has no
 * OpenSSH export, so the private key is written in the "openssh-key-v1" format (OpenSSH's PROTOCOL.key)
 * from the raw key bytes.
 */
export function generateSshDeployKey(comment = 'slipway-deploy-key'): SshDeployKeyPair {
  const cleanComment = comment.replace(/[\r\n]+/g, ' ').trim();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  if (seed.length !== 32 || pub.length !== 32) throw new Error('unexpected Ed25519 key size');

  const keyType = 'ssh-ed25519';
  const publicBlob = Buffer.concat([sshString(keyType), sshString(pub)]);
  const checkInt = randomBytes(4);
  const unpadded = Buffer.concat([
    checkInt,
    checkInt,
    sshString(keyType),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(cleanComment),
  ]);
  // Padded with 1, 2, 3, … to the cipher block size, 8 for "none".
  const padding = Buffer.from(Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'), // cipher
    sshString('none'), // KDF
    sshString(''), // KDF options
    uint32(1), // number of keys
    sshString(publicBlob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${keyType} ${publicBlob.toString('base64')}${cleanComment ? ` ${cleanComment}` : ''}`,
    fingerprint: `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`,
  };
}

/**
 * The public key (`ssh-ed25519 AAAA…`) of an OpenSSH private key, read from its unencrypted public part;
 * null for a key in another format.
 */
export function sshPublicKeyOf(privateKey: string): string | null {
  const base64 = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(
    privateKey,
  )?.[1];
  if (!base64) return null;
  const body = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (body.subarray(0, magic.length).toString('latin1') !== magic) return null;
  let offset = magic.length;
  const next = (): Buffer | null => {
    if (offset + 4 > body.length) return null;
    const length = body.readUInt32BE(offset);
    const value = body.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return value.length === length ? value : null;
  };
  next(); // cipher
  next(); // KDF
  next(); // KDF options
  offset += 4; // number of keys
  const publicBlob = next();
  if (!publicBlob || publicBlob.length < 4) return null;
  const type = publicBlob.subarray(4, 4 + publicBlob.readUInt32BE(0)).toString('latin1');
  return keyMaterial(`${type} ${publicBlob.toString('base64')}`);
}

function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

function sshString(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([uint32(bytes.length), bytes]);
}
