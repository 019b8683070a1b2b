import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ResponseHeaders } from './headers.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { UpstreamAuth, type TokenRequest, type UpstreamCredentials } from './auth.ts';
import {
  UpstreamError,
  UpstreamNotFoundError,
  UpstreamProtocolError,
  UpstreamRateLimitedError,
  UpstreamUnauthorizedError,
  UpstreamUnavailableError,
  type UpstreamErrorContext,
  type UpstreamMissing,
} from './errors.ts';
import { parseRetryAfter, readRateLimit, type RateLimitState } from './rate-limit.ts';
import type { IssuedToken } from './token-cache.ts';

export type UpstreamResponse = Dispatcher.ResponseData;
export type { ResponseHeaders };

export interface SendOptions {
  method: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

export interface TransportOptions {
  /** The registry's origin, e.g. `https://registry-1.docker.io`. */
  origin: string;
  /** How the upstream is named in errors and rate-limit reports. */
  label: string;
  dispatcher: Dispatcher;
  credentials?: UpstreamCredentials | undefined;
  userAgent: string;
  onRateLimit?: ((state: RateLimitState, upstream: string) => void) | undefined;
  /** Called with every 429 answer: of the registry, its token realm or its CDN. */
  onRateLimited?: ((upstream: string) => void) | undefined;
  /** Pauses requests to an upstream that keeps failing; by default one of its own. */
  breaker?: CircuitBreaker | undefined;
}

/** The Docker token spec's default when a token response has no `expires_in`. */
const defaultTokenLifetimeSeconds = 60;
const maxErrorBodyBytes = 8 * 1024;
const maxTokenResponseBytes = 1024 * 1024;

/**
 * Requests to one upstream: every one through the same dispatcher, transport failures turned into
 * `UpstreamUnavailableError`, registry requests authenticated (and retried once after answering a
 * 401's challenge), their rate-limit headers recorded, and failed answers turned into typed errors.
 */
export class UpstreamTransport {
  readonly origin: string;
  readonly label: string;
  readonly auth: UpstreamAuth;
  readonly #dispatcher: Dispatcher;
  readonly #userAgent: string;
  readonly #onRateLimit: TransportOptions['onRateLimit'];
  readonly #onRateLimited: TransportOptions['onRateLimited'];
  #rateLimit: RateLimitState | undefined;
  readonly #breaker: CircuitBreaker;

  constructor(options: TransportOptions) {
    this.origin = options.origin;
    this.label = options.label;
    this.#dispatcher = options.dispatcher;
    this.#userAgent = options.userAgent;
    this.#onRateLimit = options.onRateLimit;
    this.#onRateLimited = options.onRateLimited;
    this.#breaker = options.breaker ?? new CircuitBreaker();
    this.auth = new UpstreamAuth({
      credentials: options.credentials,
      fetchToken: (request) => this.#fetchToken(request),
    });
  }

  /** The rate-limit headers of the upstream's latest answer that had any. */
  get rateLimit(): RateLimitState | undefined {
    return this.#rateLimit;
  }

  /**
   * A request to the registry itself (`path` below its origin), authenticated with what earlier
   * challenges taught; a 401 is answered and the request sent once more. The final answer is returned
   * whatever its status; its body must be consumed or destroyed.
   */
  async exchange(
    context: UpstreamErrorContext,
    path: string,
    options: SendOptions & { scope?: string | undefined },
  ): Promise<UpstreamResponse> {
    const url = new URL(path, this.origin);
    const authorization = await this.auth.authorizationFor(options.scope);
    let response = await this.#registrySend(context, url, options, authorization);
    if (response.statusCode !== 401) return response;
    const challenge = response.headers['www-authenticate'];
    await discard(response);
    const retryWith = await this.auth.answer(context, challenge, options.scope, authorization);
    if (retryWith === undefined) {
      throw new UpstreamUnauthorizedError(context, this.#refusal(challenge), 401);
    }
    response = await this.#registrySend(context, url, options, retryWith);
    return response;
  }

  /** One request to any URL (a blob CDN, a token realm) with only the headers given. */
  async send(context: UpstreamErrorContext, url: URL, options: SendOptions): Promise<UpstreamResponse> {
    if (!this.#breaker.tryPass()) {
      const retryAt = this.#breaker.retryAt?.toISOString() ?? 'soon';
      throw new UpstreamUnavailableError(
        context,
        `not asked: it failed ${this.#breaker.failures} times in a row, so requests pause until ${retryAt}`,
      );
    }
    let response: UpstreamResponse;
    try {
      response = await this.#dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: options.method,
        headers: { 'user-agent': this.#userAgent, ...options.headers },
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) {
        this.#breaker.abandoned();
        throw error;
      }
      this.#breaker.failed();
      throw new UpstreamUnavailableError(context, `no answer from ${url.origin}: ${networkProblem(error)}`, {
        cause: error,
      });
    }
    if (response.statusCode >= 500) this.#breaker.failed();
    else this.#breaker.succeeded();
    if (response.statusCode === 429) this.#onRateLimited?.(this.label);
    return response;
  }

  /**
   * The error a registry answer that is not a success means, its body read (a little) for the
   * registry's error code and then released. `missing` says what a 404 is about unless the body says.
   */
  async failure(
    context: UpstreamErrorContext,
    response: UpstreamResponse,
    missing: UpstreamMissing,
  ): Promise<UpstreamError> {
    const status = response.statusCode;
    const said = await readRegistryError(response);
    const answered = `answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
    const detail = said.code ? ` (${said.code}: ${said.message ?? ''})` : '';
    if (status === 404) {
      return new UpstreamNotFoundError(context, notFoundKind(said.code) ?? missing, {
        ...(said.code ? { upstreamCode: said.code } : {}),
        ...(said.message ? { message: said.message } : {}),
      });
    }
    if (status === 401) {
      return new UpstreamUnauthorizedError(context, this.#refusal(response.headers['www-authenticate']), 401);
    }
    if (status === 403) {
      return new UpstreamUnauthorizedError(context, `${answered} to ${this.auth.principal}${detail}`, 403);
    }
    if (status === 429) {
      return new UpstreamRateLimitedError(
        context,
        parseRetryAfter(response.headers['retry-after']),
        this.#rateLimit,
      );
    }
    if (status >= 500 || status === 408) {
      return new UpstreamUnavailableError(context, `${answered}${detail}`, { status });
    }
    return new UpstreamProtocolError(context, `unexpected answer: ${answered}${detail}`, { status });
  }

  /** The whole body, refusing more than `limit` bytes; a connection lost midway is "unavailable". */
  async readBody(
    context: UpstreamErrorContext,
    response: UpstreamResponse,
    limit: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    const declared = Number(response.headers['content-length']);
    if (declared > limit) {
      response.body.destroy();
      throw new UpstreamProtocolError(
        context,
        `response of ${declared} bytes is over the ${limit}-byte limit`,
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) {
          throw new UpstreamProtocolError(context, `response is over the ${limit}-byte limit`);
        }
        chunks.push(chunk);
      }
    } catch (error) {
      response.body.destroy();
      if (error instanceof UpstreamError || signal?.aborted) throw error;
      throw new UpstreamUnavailableError(context, `connection lost while reading: ${networkProblem(error)}`, {
        cause: error,
      });
    }
    return Buffer.concat(chunks, size);
  }

  async #registrySend(
    context: UpstreamErrorContext,
    url: URL,
    options: SendOptions,
    authorization: string | undefined,
  ): Promise<UpstreamResponse> {
    const response = await this.send(context, url, {
      ...options,
      headers: { ...options.headers, ...(authorization ? { authorization } : {}) },
    });
    this.#observe(response.headers);
    return response;
  }

  #observe(headers: ResponseHeaders): void {
    const state = readRateLimit(headers);
    if (!state) return;
    this.#rateLimit = state;
    this.#onRateLimit?.(state, this.label);
  }

  /** Why a 401 stands: `answered 401 Unauthorized (insufficient_scope) to user "bob"`. */
  #refusal(challenge: string | string[] | undefined): string {
    const text = Array.isArray(challenge) ? challenge.join(', ') : (challenge ?? '');
    const error = /error="?([a-z_]+)/i.exec(text);
    const reason = error ? ` (${error[1]})` : '';
    const hint = this.auth.basicCredentials === undefined ? '; no credentials are configured' : '';
    return `answered 401 Unauthorized${reason} to ${this.auth.principal}${hint}`;
  }

  /** GET realm?service=…&scope=… with the Basic credentials (or none), as the Docker token spec has it. */
  async #fetchToken(request: TokenRequest): Promise<IssuedToken> {
    const context: UpstreamErrorContext = {
      upstream: this.label,
      operation: 'fetch token',
      target: request.scopes.join(' ') || '(no scope)',
    };
    let url: URL;
    try {
      url = new URL(request.realm);
    } catch {
      throw new UpstreamProtocolError(context, `the token realm "${request.realm}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new UpstreamProtocolError(context, `the token realm "${request.realm}" is not http(s)`);
    }
    if (request.service) url.searchParams.set('service', request.service);
    for (const scope of request.scopes) url.searchParams.append('scope', scope);
    const basic = this.auth.basicCredentials;
    const response = await this.send(context, url, {
      method: 'GET',
      headers: { accept: 'application/json', ...(basic ? { authorization: basic } : {}) },
    });
    const status = response.statusCode;
    if (status !== 200) {
      const said = await readRegistryError(response);
      const answered = `the token endpoint ${url.origin}${url.pathname} answered ${status}${said.message ? ` (${said.message})` : ''}`;
      if (status === 401 || status === 403) {
        throw new UpstreamUnauthorizedError(
          context,
          `${answered}: it refused ${this.auth.principal}`,
          status,
        );
      }
      if (status === 429) {
        throw new UpstreamRateLimitedError(
          context,
          parseRetryAfter(response.headers['retry-after']),
          undefined,
        );
      }
      if (status >= 500) throw new UpstreamUnavailableError(context, answered, { status });
      throw new UpstreamProtocolError(context, answered, { status });
    }
    const body = await this.readBody(context, response, maxTokenResponseBytes);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw new UpstreamProtocolError(context, 'the token endpoint answered something other than JSON');
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new UpstreamProtocolError(context, 'the token endpoint answered without a token');
    }
    const expiresIn = parsed.expires_in;
    const lifetimeSeconds =
      typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
        ? expiresIn
        : defaultTokenLifetimeSeconds;
    return { token, lifetimeSeconds };
  }
}

/** Releases a body nobody needs (a small one is read to the end, so the connection is reused). */
export async function discard(response: UpstreamResponse): Promise<void> {
  try {
    await response.body.dump({ limit: 64 * 1024 });
  } catch {
    // The connection is dropped instead; nothing to report.
  }
}

/** The first entry of a registry error body (`{"errors":[{"code","message"}]}`), then the body released. */
async function readRegistryError(response: UpstreamResponse): Promise<{ code?: string; message?: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= maxErrorBodyBytes) break;
    }
  } catch {
    // What arrived is enough.
  } finally {
    response.body.destroy();
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      errors?: Array<{ code?: unknown; message?: unknown }>;
    };
    const first = body.errors?.[0];
    return {
      ...(typeof first?.code === 'string' ? { code: first.code } : {}),
      ...(typeof first?.message === 'string' ? { message: first.message.slice(0, 300) } : {}),
    };
  } catch {
    return {};
  }
}

function notFoundKind(code: string | undefined): UpstreamMissing | undefined {
  if (code === 'MANIFEST_UNKNOWN') return 'manifest';
  if (code === 'BLOB_UNKNOWN') return 'blob';
  if (code === 'NAME_UNKNOWN') return 'repository';
  return undefined;
}

/** A transport error in a few words: `connect ECONNREFUSED 127.0.0.1:5000`, `Headers Timeout Error`. */
export function networkProblem(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  // Connecting to several addresses of a host fails with an AggregateError whose message is empty.
  const message =
    error.message || (error instanceof AggregateError ? networkProblem(error.errors[0]) : '') || String(code);
  return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
}
