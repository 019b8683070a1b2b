import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  generateSshDeployKey,
  GitLabSetupError,
  registerGitLabProject,
  unregisterGitLabProject,
} from '../../src/triggers/gitlab-setup.ts';
import { run } from '../helpers/tools.ts';

/*
 * GitLab itself cannot run in the tests, so a small HTTP server stands in for it: it implements only the
 * REST v4 endpoints the module calls (GET a project; list, add, edit and delete project webhooks; list, add
 * and delete project deploy keys), authenticates PRIVATE-TOKEN, answers in the shapes GitLab's API
 * documentation gives ("Project webhooks API", "Deploy keys API", offset pagination headers and error
 * bodies such as {"message":"404 Project Not Found"}), and records every request so the tests can assert
 * exactly what GitLab would receive.
 */

const apiToken = 'glpat-Xy7Qm2Lr9TvK4wNz8bPc';
const webhookSecret = 'b7e1c9d04f2a63e8a51d7c0f9e2b4a68d3c1f07e5a9b2d64c8e0f1a3b5d7c9e2';
const projectPath = 'platform/payments/payments-api';
const webhookUrl = 'https://slipway.example.com/webhooks/gitlab/trg_4kq9z2';

interface Recorded {
  method: string;
  /** The path and query as sent, still URL-encoded. */
  path: string;
  privateToken: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

interface FakeProject {
  id: number;
  path_with_namespace: string;
  default_branch: string | null;
  /** The token's user's role: webhooks and deploy keys need Maintainer. */
  role: 'maintainer' | 'developer';
}

type Json = Record<string, unknown>;

const hookEventFields = [
  'push_events',
  'issues_events',
  'confidential_issues_events',
  'merge_requests_events',
  'tag_push_events',
  'note_events',
  'confidential_note_events',
  'job_events',
  'pipeline_events',
  'wiki_page_events',
  'deployment_events',
  'releases_events',
  'enable_ssl_verification',
] as const;

class FakeGitLab {
  readonly requests: Recorded[] = [];
  readonly projects: FakeProject[] = [];
  readonly hooks: Json[] = [];
  /** Hook secret tokens by hook ID: GitLab stores them but never returns them. */
  readonly hookTokens = new Map<number, string>();
  readonly deployKeys: Json[] = [];
  private nextId = 100;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const contentType = request.headers['content-type'];
        const body = raw && contentType?.startsWith('application/json') ? JSON.parse(raw) : raw || undefined;
        const token = request.headers['private-token'];
        this.requests.push({
          method: request.method ?? '',
          path: request.url ?? '',
          privateToken: typeof token === 'string' ? token : undefined,
          contentType,
          body,
        });
        const answer = this.answer(request.method ?? '', request.url ?? '', token, body as Json);
        response.writeHead(answer.status, {
          ...(answer.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...answer.headers,
        });
        response.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  reset(): void {
    this.requests.length = 0;
    this.projects.length = 0;
    this.hooks.length = 0;
    this.hookTokens.clear();
    this.deployKeys.length = 0;
  }

  addProject(project: FakeProject): void {
    this.projects.push(project);
  }

  addHook(projectId: number, url: string, fields: Json = {}): Json {
    const hook = this.hookJson(projectId, url, fields);
    this.hooks.push(hook);
    return hook;
  }

  addDeployKey(projectId: number, title: string, key: string, canPush = false): Json {
    const deployKey = this.deployKeyJson(projectId, title, key, canPush);
    this.deployKeys.push(deployKey);
    return deployKey;
  }

  hooksOf(projectId: number): Json[] {
    return this.hooks.filter((h) => h.project_id === projectId);
  }

  deployKeysOf(projectId: number): Json[] {
    return this.deployKeys.filter((k) => k.project === projectId);
  }

  private answer(
    method: string,
    rawUrl: string,
    token: string | string[] | undefined,
    body: Json,
  ): { status: number; body?: unknown; headers?: Record<string, string> } {
    if (token !== apiToken) return { status: 401, body: { message: '401 Unauthorized' } };
    const url = new URL(rawUrl, this.url);
    const match = /^\/api\/v4\/projects\/([^/]+)(?:\/(hooks|deploy_keys)(?:\/(\d+))?)?$/.exec(url.pathname);
    if (!match) return { status: 404, body: { error: '404 Not Found' } };
    const [, encodedId = '', collection, itemId] = match;
    const id = decodeURIComponent(encodedId);
    const project = this.projects.find((p) => String(p.id) === id || p.path_with_namespace === id);
    if (!project) return { status: 404, body: { message: '404 Project Not Found' } };

    if (collection === undefined && method === 'GET') return { status: 200, body: this.projectJson(project) };
    if (project.role !== 'maintainer') return { status: 403, body: { message: '403 Forbidden' } };

    if (collection === 'hooks') {
      const hooks = this.hooksOf(project.id);
      if (itemId === undefined && method === 'GET') return this.page(url, hooks);
      if (itemId === undefined && method === 'POST') {
        if (typeof body.url !== 'string') return { status: 400, body: { error: 'url is missing' } };
        const hook = this.addHook(project.id, body.url, body);
        if (typeof body.token === 'string') this.hookTokens.set(hook.id as number, body.token);
        return { status: 201, body: hook };
      }
      const hook = hooks.find((h) => String(h.id) === itemId);
      if (!hook) return { status: 404, body: { message: '404 Not found' } };
      if (method === 'PUT') {
        if (typeof body.url !== 'string') return { status: 400, body: { error: 'url is missing' } };
        hook.url = body.url;
        for (const field of hookEventFields) if (typeof body[field] === 'boolean') hook[field] = body[field];
        if (typeof body.token === 'string') this.hookTokens.set(hook.id as number, body.token);
        return { status: 200, body: hook };
      }
      if (method === 'DELETE') {
        this.hooks.splice(this.hooks.indexOf(hook), 1);
        return { status: 204 };
      }
    }

    if (collection === 'deploy_keys') {
      const keys = this.deployKeysOf(project.id);
      if (itemId === undefined && method === 'GET') return this.page(url, keys.map(publicDeployKey));
      if (itemId === undefined && method === 'POST') {
        if (typeof body.title !== 'string') return { status: 400, body: { error: 'title is missing' } };
        if (typeof body.key !== 'string') return { status: 400, body: { error: 'key is missing' } };
        const deployKey = this.addDeployKey(project.id, body.title, body.key, body.can_push === true);
        return { status: 201, body: publicDeployKey(deployKey) };
      }
      const deployKey = keys.find((k) => String(k.id) === itemId);
      if (!deployKey) return { status: 404, body: { message: '404 Deploy Key Not Found' } };
      if (method === 'DELETE') {
        this.deployKeys.splice(this.deployKeys.indexOf(deployKey), 1);
        return { status: 204 };
      }
    }
    return { status: 405, body: { message: '405 Method Not Allowed' } };
  }

  /** GitLab's offset pagination: `page` and `per_page` (20 by default, at most 100), X-* and Link headers. */
  private page(url: URL, items: unknown[]) {
    const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 20), 100);
    const page = Number(url.searchParams.get('page') ?? 1);
    const totalPages = Math.max(1, Math.ceil(items.length / perPage));
    const link = (p: number) => {
      const target = new URL(url);
      target.searchParams.set('page', String(p));
      target.searchParams.set('per_page', String(perPage));
      return target.toString();
    };
    const links = [
      ...(page < totalPages ? [`<${link(page + 1)}>; rel="next"`] : []),
      ...(page > 1 ? [`<${link(page - 1)}>; rel="prev"`] : []),
      `<${link(1)}>; rel="first"`,
      `<${link(totalPages)}>; rel="last"`,
    ];
    return {
      status: 200,
      body: items.slice((page - 1) * perPage, page * perPage),
      headers: {
        link: links.join(', '),
        'x-page': String(page),
        'x-per-page': String(perPage),
        'x-total': String(items.length),
        'x-total-pages': String(totalPages),
        'x-next-page': page < totalPages ? String(page + 1) : '',
        'x-prev-page': page > 1 ? String(page - 1) : '',
      },
    };
  }

  private projectJson(project: FakeProject) {
    const name = project.path_with_namespace.split('/').at(-1) ?? '';
    const webUrl = `https://gitlab.example.com/${project.path_with_namespace}`;
    return {
      id: project.id,
      description: null,
      name,
      name_with_namespace: project.path_with_namespace.split('/').join(' / '),
      path: name,
      path_with_namespace: project.path_with_namespace,
      created_at: '2025-03-11T09:21:44.012Z',
      default_branch: project.default_branch,
      ssh_url_to_repo: `git@gitlab.example.com:${project.path_with_namespace}.git`,
      http_url_to_repo: `${webUrl}.git`,
      web_url: webUrl,
      visibility: 'private',
      empty_repo: project.default_branch === null,
      archived: false,
      namespace: { id: 7, name: 'payments', path: 'payments', kind: 'group', full_path: 'platform/payments' },
      permissions: {
        project_access: { access_level: project.role === 'maintainer' ? 40 : 30, notification_level: 3 },
        group_access: null,
      },
    };
  }

  private hookJson(projectId: number, url: string, fields: Json): Json {
    const hook: Json = {
      id: this.nextId++,
      url,
      name: '',
      description: '',
      project_id: projectId,
      push_events: true,
      push_events_branch_filter: '',
      issues_events: false,
      confidential_issues_events: false,
      merge_requests_events: false,
      tag_push_events: false,
      note_events: false,
      confidential_note_events: false,
      job_events: false,
      pipeline_events: false,
      wiki_page_events: false,
      deployment_events: false,
      releases_events: false,
      enable_ssl_verification: true,
      repository_update_events: false,
      alert_status: 'executable',
      disabled_until: null,
      url_variables: [],
      created_at: '2026-01-05T10:00:00.000Z',
    };
    for (const field of hookEventFields) if (typeof fields[field] === 'boolean') hook[field] = fields[field];
    return hook;
  }

  private deployKeyJson(projectId: number, title: string, key: string, canPush: boolean): Json {
    const blob = Buffer.from(key.split(/\s+/)[1] ?? '', 'base64');
    const md5 = createHash('md5').update(blob).digest('hex');
    return {
      id: this.nextId++,
      title,
      key,
      fingerprint: md5.match(/../g)?.join(':'),
      fingerprint_sha256: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
      created_at: '2026-01-05T10:00:00.000Z',
      expires_at: null,
      can_push: canPush,
      project: projectId,
    };
  }
}

/** A deploy key as GitLab shows it, without the project the fake files it under. */
function publicDeployKey(deployKey: Json): Json {
  const { project: _project, ...shown } = deployKey;
  return shown;
}

const gitlab = new FakeGitLab();
const deployKey = generateSshDeployKey('slipway trg_4kq9z2');

beforeAll(() => gitlab.start());
afterAll(() => gitlab.stop());
beforeEach(() => {
  gitlab.reset();
  gitlab.addProject({ id: 15, path_with_namespace: projectPath, default_branch: 'main', role: 'maintainer' });
});

function options(overrides: Partial<Parameters<typeof registerGitLabProject>[0]> = {}) {
  return {
    apiUrl: gitlab.url,
    token: apiToken,
    project: projectPath,
    webhookUrl,
    webhookSecret,
    deployKey: { title: 'Slipway build trigger trg_4kq9z2', publicKey: deployKey.publicKey },
    ...overrides,
  };
}

/** Method and path of each request GitLab received. */
function calls(): string[] {
  return gitlab.requests.map((r) => `${r.method} ${r.path}`);
}

async function rejection(promise: Promise<unknown>): Promise<GitLabSetupError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GitLabSetupError);
    return error as GitLabSetupError;
  }
  throw new Error('expected a GitLabSetupError');
}

function expectNoSecrets(error: Error): void {
  for (const shown of [error.message, String(error), JSON.stringify(error), inspect(error, { depth: 10 })]) {
    expect(shown).not.toContain(apiToken);
    expect(shown).not.toContain(webhookSecret);
  }
  expect(error.cause).toBeUndefined();
}

describe('registering a GitLab project', () => {
  it('adds a push and tag push webhook with the secret token, and a read-only deploy key', async () => {
    const registration = await registerGitLabProject(options());

    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      'GET /api/v4/projects/15/hooks?per_page=100',
      'POST /api/v4/projects/15/hooks',
      'GET /api/v4/projects/15/deploy_keys?per_page=100',
      'POST /api/v4/projects/15/deploy_keys',
    ]);
    for (const request of gitlab.requests) expect(request.privateToken).toBe(apiToken);
    const [, , addHook, , addKey] = gitlab.requests;
    expect(addHook?.contentType).toBe('application/json');
    expect(addHook?.body).toEqual({
      url: webhookUrl,
      push_events: true,
      tag_push_events: true,
      token: webhookSecret,
      enable_ssl_verification: true,
    });
    expect(addKey?.body).toEqual({
      title: 'Slipway build trigger trg_4kq9z2',
      key: deployKey.publicKey,
      can_push: false,
    });

    const [hook] = gitlab.hooksOf(15);
    expect(registration).toEqual({
      projectId: 15,
      projectPath,
      hookId: hook?.id,
      hookCreated: true,
      deployKeyId: gitlab.deployKeysOf(15)[0]?.id,
      deployKeyCreated: true,
      cloneUrls: {
        http: `https://gitlab.example.com/${projectPath}.git`,
        ssh: `git@gitlab.example.com:${projectPath}.git`,
      },
      defaultBranch: 'main',
    });
    expect(hook).toMatchObject({ push_events: true, tag_push_events: true, enable_ssl_verification: true });
    expect(gitlab.hookTokens.get(hook?.id as number)).toBe(webhookSecret);
    expect(gitlab.deployKeysOf(15)[0]).toMatchObject({
      can_push: false,
      fingerprint_sha256: deployKey.fingerprint,
    });
  });

  it('registers again without duplicates: the hook is updated in place and the deploy key reused', async () => {
    const first = await registerGitLabProject(options());
    gitlab.requests.length = 0;

    const second = await registerGitLabProject(
      options({ tlsVerify: false, webhookSecret: 'replaced-secret-0c41f9a2' }),
    );

    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      'GET /api/v4/projects/15/hooks?per_page=100',
      `PUT /api/v4/projects/15/hooks/${first.hookId}`,
      'GET /api/v4/projects/15/deploy_keys?per_page=100',
    ]);
    expect(gitlab.requests[2]?.body).toEqual({
      url: webhookUrl,
      push_events: true,
      tag_push_events: true,
      token: 'replaced-secret-0c41f9a2',
      enable_ssl_verification: false,
    });
    expect(second).toEqual({ ...first, hookCreated: false, deployKeyCreated: false });
    expect(gitlab.hooksOf(15)).toHaveLength(1);
    expect(gitlab.hookTokens.get(first.hookId)).toBe('replaced-secret-0c41f9a2');
    expect(gitlab.deployKeysOf(15)).toHaveLength(1);
  });

  it('finds an existing hook with the URL past the first page, and turns its events on', async () => {
    for (let i = 0; i < 100; i += 1) gitlab.addHook(15, `https://chat.example.com/hooks/${i}`);
    const existing = gitlab.addHook(15, webhookUrl, { push_events: false, tag_push_events: false });

    const registration = await registerGitLabProject(options({ deployKey: undefined }));

    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      'GET /api/v4/projects/15/hooks?per_page=100',
      'GET /api/v4/projects/15/hooks?per_page=100&page=2',
      `PUT /api/v4/projects/15/hooks/${existing.id}`,
    ]);
    expect(registration).toMatchObject({ hookId: existing.id, hookCreated: false });
    expect(registration.deployKeyId).toBeUndefined();
    expect(existing).toMatchObject({ push_events: true, tag_push_events: true });
    expect(gitlab.hooksOf(15)).toHaveLength(101);
  });

  it('reuses a deploy key the project has with the same key, whatever its title and comment', async () => {
    const [type, blob] = deployKey.publicKey.split(' ');
    const existing = gitlab.addDeployKey(15, 'added by hand', `${type} ${blob} ops@laptop`);

    const registration = await registerGitLabProject(options());

    expect(calls()).not.toContain('POST /api/v4/projects/15/deploy_keys');
    expect(registration).toMatchObject({ deployKeyId: existing.id, deployKeyCreated: false });
  });

  it('takes a numeric project ID, and an API URL with /api/v4 and a trailing slash', async () => {
    const registration = await registerGitLabProject(
      options({ project: 15, apiUrl: `${gitlab.url}/api/v4/`, deployKey: undefined }),
    );
    expect(calls()[0]).toBe('GET /api/v4/projects/15');
    expect(registration.projectPath).toBe(projectPath);
  });

  it('gives a project without commits no default branch', async () => {
    gitlab.addProject({
      id: 16,
      path_with_namespace: 'platform/new-service',
      default_branch: null,
      role: 'maintainer',
    });
    const registration = await registerGitLabProject(options({ project: 'platform/new-service' }));
    expect(registration.defaultBranch).toBeNull();
  });
});

describe('GitLab refusing', () => {
  it('says a 401 means the token is wrong, expired or revoked, never showing it', async () => {
    const error = await rejection(registerGitLabProject(options({ token: `${apiToken}-revoked` })));
    expect(error.message).toContain('refused the API token (401 Unauthorized)');
    expect(error.message).toContain('"api" scope');
    expect(error).toMatchObject({ code: 'SLW_ERR_GITLAB_SETUP', gitlabStatus: 401, statusCode: 400 });
    expectNoSecrets(error);
    expect(error.message).not.toContain(`${apiToken}-revoked`);
    expect(calls()).toEqual(['GET /api/v4/projects/platform%2Fpayments%2Fpayments-api']);
  });

  it('names the project GitLab has no trace of, and what to check', async () => {
    const error = await rejection(registerGitLabProject(options({ project: 'platform/payments/ledger' })));
    expect(error.message).toBe(
      `GitLab at ${gitlab.url} has no project platform/payments/ledger that the API token can see (404 Not Found): ` +
        "check the project's full path (group/subgroup/project, as in its URL) or its numeric ID, and that the " +
        "token's user is a member: GitLab answers 404 for private projects a token cannot see.",
    );
    expect(error).toMatchObject({ gitlabStatus: 404, statusCode: 400 });
    expectNoSecrets(error);
    expect(gitlab.hooks).toHaveLength(0);
  });

  it('says webhooks need the Maintainer role when GitLab answers 403', async () => {
    gitlab.addProject({
      id: 21,
      path_with_namespace: 'platform/billing',
      default_branch: 'main',
      role: 'developer',
    });
    const error = await rejection(registerGitLabProject(options({ project: 'platform/billing' })));
    expect(error.message).toContain(
      'does not let the API token list the webhooks of platform/billing (403 Forbidden',
    );
    expect(error.message).toContain('Maintainer role');
    expect(error).toMatchObject({ gitlabStatus: 403, statusCode: 400 });
    expectNoSecrets(error);
  });

  it('says when GitLab cannot be reached, without the token', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const error = await rejection(registerGitLabProject(options({ apiUrl: `http://127.0.0.1:${port}` })));
    expect(error.message).toBe(
      `could not reach GitLab at http://127.0.0.1:${port} to find project ${projectPath}: ECONNREFUSED.`,
    );
    expect(error).toMatchObject({ gitlabStatus: undefined, statusCode: 502 });
    expectNoSecrets(error);
  });

  it('gives up on a GitLab that does not answer, after timeoutMs', async () => {
    const silent = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const error = await rejection(registerGitLabProject(options({ apiUrl: silentUrl, timeoutMs: 300 })));
      expect(error.message).toBe(
        `GitLab at ${silentUrl} did not answer within 0.3 s when asked to find project ${projectPath}.`,
      );
      expect(error).toMatchObject({ statusCode: 502 });
      expectNoSecrets(error);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('refuses an API URL with credentials in it before calling GitLab', async () => {
    const error = await rejection(
      registerGitLabProject(options({ apiUrl: gitlab.url.replace('http://', 'http://root:hunter2@') })),
    );
    expect(error.message).toBe(
      'the GitLab URL must be the instance address only, without credentials, query or fragment',
    );
    expect(error).toMatchObject({ gitlabStatus: undefined, statusCode: 400 });
    expect(gitlab.requests).toHaveLength(0);
  });

  it('checks the deploy key before changing anything on GitLab', async () => {
    const error = await rejection(
      registerGitLabProject(options({ deployKey: { title: 'pasted', publicKey: deployKey.privateKey } })),
    );
    expect(error.message).toContain('the deploy key is not an SSH public key');
    expect(error).toMatchObject({ statusCode: 400 });
    expect(gitlab.requests).toHaveLength(0);
  });
});

describe('unregistering a GitLab project', () => {
  it('removes the hook and the deploy key it added, and is a no-op the second time', async () => {
    gitlab.addHook(15, 'https://chat.example.com/hooks/keep');
    const registration = await registerGitLabProject(options());
    gitlab.requests.length = 0;
    const removal = {
      apiUrl: gitlab.url,
      token: apiToken,
      project: projectPath,
      hookId: registration.hookId,
      deployKeyId: registration.deployKeyId,
    };

    expect(await unregisterGitLabProject(removal)).toEqual({ hooksRemoved: 1, deployKeyRemoved: true });
    expect(calls()).toEqual([
      'GET /api/v4/projects/platform%2Fpayments%2Fpayments-api',
      `DELETE /api/v4/projects/15/hooks/${registration.hookId}`,
      `DELETE /api/v4/projects/15/deploy_keys/${registration.deployKeyId}`,
    ]);
    for (const request of gitlab.requests) expect(request.privateToken).toBe(apiToken);
    expect(gitlab.hooksOf(15).map((h) => h.url)).toEqual(['https://chat.example.com/hooks/keep']);
    expect(gitlab.deployKeysOf(15)).toEqual([]);

    expect(await unregisterGitLabProject(removal)).toEqual({ hooksRemoved: 0, deployKeyRemoved: false });
  });

  it('finds the hooks by URL when the hook ID is not known', async () => {
    gitlab.addHook(15, webhookUrl);
    gitlab.addHook(15, webhookUrl);
    gitlab.addHook(15, 'https://chat.example.com/hooks/keep');
    const result = await unregisterGitLabProject({
      apiUrl: gitlab.url,
      token: apiToken,
      project: projectPath,
      webhookUrl,
    });
    expect(result).toEqual({ hooksRemoved: 2, deployKeyRemoved: false });
    expect(gitlab.hooksOf(15).map((h) => h.url)).toEqual(['https://chat.example.com/hooks/keep']);
  });
});

describe('generating a deploy key', () => {
  const hasSshKeygen = (() => {
    try {
      execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  })();

  it('writes an OpenSSH private key and an ssh-ed25519 public line', () => {
    const pair = generateSshDeployKey('slipway trg_1\nsecond line');
    expect(pair.privateKey).toMatch(
      /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/,
    );
    expect(pair.publicKey).toMatch(
      /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} slipway trg_1 second line$/,
    );
    expect(pair.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(generateSshDeployKey().publicKey).not.toBe(pair.publicKey);
  });

  it.runIf(hasSshKeygen)('produces a key ssh-keygen reads and signs with', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-deploy-key-'));
    try {
      const pair = generateSshDeployKey('slipway trg_2');
      const keyFile = join(dir, 'id_ed25519');
      await writeFile(keyFile, pair.privateKey, { mode: 0o600 });
      expect((await run('ssh-keygen', ['-y', '-f', keyFile])).stdout.trim()).toBe(pair.publicKey);
      expect((await run('ssh-keygen', ['-l', '-f', keyFile])).stdout.trim()).toBe(
        `256 ${pair.fingerprint} slipway trg_2 (ED25519)`,
      );
      // A signature that verifies shows the private half matches the public one.
      const data = join(dir, 'data');
      await writeFile(data, 'checked out by slipway\n');
      await run('ssh-keygen', ['-Y', 'sign', '-q', '-f', keyFile, '-n', 'file', data]);
      await writeFile(join(dir, 'allowed'), `builder ${pair.publicKey}\n`);
      const verify = `ssh-keygen -Y verify -f ${join(dir, 'allowed')} -I builder -n file -s ${data}.sig < ${data}`;
      expect((await run('sh', ['-c', verify])).stdout).toContain('Good "file" signature for builder');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
