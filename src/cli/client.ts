import { CliError, usageError } from './errors.ts';
import { readLogin } from './credentials-store.ts';

export type Query = Record<string, string | number | boolean | undefined>;

/** One page of a listing and the cursor of the next one, when there is one. */
export interface Page<T, Cursor> {
  items: T[];
  next?: Cursor | undefined;
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown };
}

/**
 * A client of the gateway's /api/v1: JSON in and out, one Authorization header on every request.
 * An error answer becomes a CliError carrying the server's code and message.
 */
export class ApiClient {
  readonly baseUrl: string;
  readonly #authorization: string;
  /** Added to the server's message when it refuses the credentials, to say where they came from. */
  readonly #credentialsHint: string | undefined;

  constructor(baseUrl: string, authorization: string, options: { credentialsHint?: string } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#authorization = authorization;
    this.#credentialsHint = options.credentialsHint;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body });
  }

  async delete(path: string): Promise<void> {
    await this.request<void>('DELETE', path, {});
  }

  async request<T>(method: string, path: string, options: { body?: unknown; query?: Query }): Promise<T> {
    const url = new URL(`${this.baseUrl}/api/v1${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      Authorization: this.#authorization,
      Accept: 'application/json',
    };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch (error) {
      const cause = (error as Error).cause as Error | undefined;
      throw new CliError(
        'SLW_ERR_UNREACHABLE',
        `cannot reach ${this.baseUrl}: ${cause?.message ?? (error as Error).message}`,
        1,
      );
    }
    const text = await response.text();
    if (!response.ok) throw this.#errorFrom(response, text);
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(
        'SLW_ERR_BAD_RESPONSE',
        `${method} ${url.pathname} answered with something other than JSON: is ${this.baseUrl} a Slipway gateway?`,
        1,
      );
    }
  }

  /**
   * A GET whose answer is not JSON (Server-Sent Events, a script): the response, its body unread.
   * An error answer is a CliError, as for `request`.
   */
  async open(
    path: string,
    options: { query?: Query; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const url = new URL(`${this.baseUrl}/api/v1${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { Authorization: this.#authorization, Accept: 'text/event-stream', ...options.headers },
      });
    } catch (error) {
      const cause = (error as Error).cause as Error | undefined;
      throw new CliError(
        'SLW_ERR_UNREACHABLE',
        `cannot reach ${this.baseUrl}: ${cause?.message ?? (error as Error).message}`,
        1,
      );
    }
    if (!response.ok) throw this.#errorFrom(response, await response.text());
    return response;
  }

  #errorFrom(response: Response, text: string): CliError {
    const exitCode = response.status < 500 ? 2 : 1;
    let body: ErrorBody | undefined;
    try {
      body = JSON.parse(text) as ErrorBody;
    } catch {
      body = undefined;
    }
    const code = body?.error?.code;
    const message = body?.error?.message;
    if (typeof code !== 'string' || !code.startsWith('SLW_ERR_') || typeof message !== 'string') {
      return new CliError(
        'SLW_ERR_BAD_RESPONSE',
        `${this.baseUrl} answered ${response.status} ${response.statusText}: is it a Slipway gateway?`,
        exitCode,
      );
    }
    const hint =
      code === 'SLW_ERR_UNAUTHENTICATED' && this.#credentialsHint ? ` (${this.#credentialsHint})` : '';
    return new CliError(code as `SLW_ERR_${string}`, `${message}${hint}`, exitCode);
  }
}

/** The most items one request asks for; longer listings take several pages. */
const maxPageSize = 100;

/** A listing cut at the caller's limit; `more` says the gateway had more to give. */
export interface Collected<T> {
  items: T[];
  more: boolean;
}

/** Follows a listing's pages until it ends or `limit` items are in hand. */
export async function collect<T, Cursor>(
  limit: number,
  fetchPage: (cursor: Cursor | undefined, pageSize: number) => Promise<Page<T, Cursor>>,
): Promise<Collected<T>> {
  const items: T[] = [];
  let cursor: Cursor | undefined;
  for (;;) {
    const page = await fetchPage(cursor, Math.min(limit - items.length, maxPageSize));
    const room = limit - items.length;
    items.push(...page.items.slice(0, room));
    cursor = page.items.length > 0 ? (page.next ?? undefined) : undefined;
    if (page.items.length > room || (cursor !== undefined && items.length >= limit))
      return { items, more: true };
    if (cursor === undefined) return { items, more: false };
  }
}

/** Encodes each interpolated value as one path segment: path`/organizations/${name}`. */
export function path(strings: TemplateStringsArray, ...values: Array<string | number>): string {
  return strings.reduce(
    (joined, part, index) =>
      joined + part + (index < values.length ? encodeURIComponent(String(values[index])) : ''),
    '',
  );
}

export const bearer = (token: string) => `Bearer ${token}`;

export const basic = (username: string, secret: string) =>
  `Basic ${Buffer.from(`${username}:${secret}`).toString('base64')}`;

/**
 * The client every command but `login` uses: SLIPWAY_URL and SLIPWAY_TOKEN when set, else the login
 * `slipway login` stored.
 */
export async function connect(env: NodeJS.ProcessEnv = process.env): Promise<ApiClient> {
  const url = env.SLIPWAY_URL;
  const token = env.SLIPWAY_TOKEN;
  if (url && token) return new ApiClient(url, bearer(token), { credentialsHint: 'check SLIPWAY_TOKEN' });
  if (url || token) {
    throw usageError(
      `${url ? 'SLIPWAY_URL' : 'SLIPWAY_TOKEN'} is set without ${url ? 'SLIPWAY_TOKEN' : 'SLIPWAY_URL'}: set both, or neither to use the stored login`,
    );
  }
  const login = await readLogin();
  if (!login) throw usageError('not logged in: run "slipway login URL" first');
  return new ApiClient(login.url, bearer(login.token), {
    credentialsHint: `the stored login was refused: run "slipway login ${login.url}" again`,
  });
}
