import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * GitLab itself cannot run in the tests, so a small HTTP server stands in for it: it implements only the
 * REST v4 endpoints Slipway calls (GET a project; list, add, edit and delete project webhooks; list, add
 * and delete project deploy keys), authenticates PRIVATE-TOKEN, answers in the shapes GitLab's API
 * documentation gives ("Project webhooks API", "Deploy keys API", offset pagination headers and error
 * bodies such as {"message":"404 Project Not Found"}), and records every request so the tests can assert
 * exactly what GitLab would receive.
 */

/** The API token the fake accepts unless it is given another. */
export const fakeGitLabToken = 'glpat-Xy7Qm2Lr9TvK4wNz8bPc';

export interface Recorded {
  method: string;
  /** The path and query as sent, still URL-encoded. */
  path: string;
  privateToken: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

export interface FakeProject {
  id: number;
  path_with_namespace: string;
  default_branch: string | null;
  /** The token's user's role: webhooks and deploy keys need Maintainer. */
  role: 'maintainer' | 'developer';
}

export type Json = Record<string, unknown>;

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

export class FakeGitLab {
  readonly requests: Recorded[] = [];
  readonly projects: FakeProject[] = [];
  readonly hooks: Json[] = [];
  /** Hook secret tokens by hook ID: GitLab stores them but never returns them. */
  readonly hookTokens = new Map<number, string>();
  readonly deployKeys: Json[] = [];
  private nextId = 100;
  private server: Server | undefined;
  url = '';
  /** The API token GitLab accepts: change it to have every request refused (401), as a revoked token is. */
  token: string;

  constructor(options: { token?: string } = {}) {
    this.token = options.token ?? fakeGitLabToken;
  }

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

  /** Requests answered with an error instead, e.g. to have a later step of a setup fail. */
  readonly failures: Array<{ method: string; path: RegExp; status: number; message: string }> = [];

  /** Answers requests with this method whose path matches `path` with `status`, until reset. */
  fail(method: string, path: RegExp, status: number, message = `${status} Refused`): void {
    this.failures.push({ method, path, status, message });
  }

  reset(): void {
    this.failures.length = 0;
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
    if (token !== this.token) return { status: 401, body: { message: '401 Unauthorized' } };
    const url = new URL(rawUrl, this.url);
    const failure = this.failures.find((f) => f.method === method && f.path.test(url.pathname));
    if (failure) return { status: failure.status, body: { message: failure.message } };
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

/** What GitLab sends to a trigger's webhook for an event that builds nothing, with the hook's secret token. */
export function deliverGitLabEvent(webhookUrl: string, token: string): Promise<Response> {
  return fetch(webhookUrl, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-Gitlab-Event': 'Merge Request Hook',
      'X-Gitlab-Token': token,
    },
    body: JSON.stringify({ object_kind: 'merge_request' }),
  });
}
