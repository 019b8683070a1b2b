import { SlipwayError } from '../../errors.ts';
import type { RateLimitState } from './rate-limit.ts';

/** What the client was doing, for messages: `upstream docker.io: get manifest library/nginx:1.27: …`. */
export interface UpstreamErrorContext {
  /** The upstream's name (or its host when it has none). */
  upstream: string;
  /** e.g. `get manifest`, `get blob`, `list tags`, `fetch token`, `ping`. */
  operation: string;
  /** What the operation was about, e.g. `library/nginx:1.27`; absent for `ping`. */
  target?: string;
}

/**
 * Every failure of an upstream call. The cache layer decides by class (or `code`): serve stale content
 * on `UpstreamUnavailableError` and `UpstreamRateLimitedError`, remember an `UpstreamNotFoundError`,
 * treat `UpstreamUnauthorizedError` as "not there".
 */
export class UpstreamError extends SlipwayError {
  readonly upstream: string;
  readonly operation: string;
  /** The HTTP status that caused it, when there was an answer. */
  readonly status: number | undefined;

  constructor(
    code: `SLW_ERR_UPSTREAM_${string}`,
    context: UpstreamErrorContext,
    problem: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    const about = context.target ? `${context.operation} ${context.target}` : context.operation;
    super(code, `upstream ${context.upstream}: ${about}: ${problem}`, { cause: options.cause });
    this.upstream = context.upstream;
    this.operation = context.operation;
    this.status = options.status;
  }
}

export type UpstreamMissing = 'manifest' | 'blob' | 'repository';

/** 404: the manifest, blob or repository is not on the upstream. */
export class UpstreamNotFoundError extends UpstreamError {
  readonly missing: UpstreamMissing;
  /** The registry's error code, e.g. `MANIFEST_UNKNOWN`, when it sent one. */
  readonly upstreamCode: string | undefined;

  constructor(
    context: UpstreamErrorContext,
    missing: UpstreamMissing,
    detail: { upstreamCode?: string; message?: string } = {},
  ) {
    const said = detail.upstreamCode ? ` (${detail.upstreamCode}: ${detail.message ?? ''})` : '';
    super('SLW_ERR_UPSTREAM_NOT_FOUND', context, `${missing} not found${said}`, { status: 404 });
    this.missing = missing;
    this.upstreamCode = detail.upstreamCode;
  }
}

/**
 * 401 or 403 after authenticating as well as the client could: credentials missing, wrong or revoked,
 * or not allowed this repository. Registries such as Docker Hub also answer this way for repositories
 * that do not exist.
 */
export class UpstreamUnauthorizedError extends UpstreamError {
  constructor(context: UpstreamErrorContext, problem: string, status: number) {
    super('SLW_ERR_UPSTREAM_UNAUTHORIZED', context, problem, { status });
  }
}

/** 429: the upstream's pull limit is used up; `retryAfterSeconds` says when to try again, when it said. */
export class UpstreamRateLimitedError extends UpstreamError {
  readonly retryAfterSeconds: number | undefined;
  readonly rateLimit: RateLimitState | undefined;

  constructor(
    context: UpstreamErrorContext,
    retryAfterSeconds: number | undefined,
    rateLimit: RateLimitState | undefined,
  ) {
    const when = retryAfterSeconds === undefined ? '' : `, retry after ${retryAfterSeconds} s`;
    super('SLW_ERR_UPSTREAM_RATE_LIMITED', context, `rate limited (429)${when}`, { status: 429 });
    this.retryAfterSeconds = retryAfterSeconds;
    this.rateLimit = rateLimit;
  }
}

/** No usable answer: connection refused or reset, a timeout, a TLS failure, or a 5xx. */
export class UpstreamUnavailableError extends UpstreamError {
  constructor(
    context: UpstreamErrorContext,
    problem: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super('SLW_ERR_UPSTREAM_UNAVAILABLE', context, problem, options);
  }
}

/** The bytes the upstream sent do not have the digest they were asked by, or claimed to have. */
export class UpstreamDigestMismatchError extends UpstreamError {
  readonly expected: string;
  readonly actual: string;

  constructor(context: UpstreamErrorContext, expected: string, actual: string) {
    super('SLW_ERR_UPSTREAM_DIGEST_MISMATCH', context, `content has digest ${actual}, expected ${expected}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * An answer the client cannot use: an unexpected status, a malformed challenge, token response or
 * Content-Range, a manifest over the size limit, too many redirects.
 */
export class UpstreamProtocolError extends UpstreamError {
  constructor(
    context: UpstreamErrorContext,
    problem: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super('SLW_ERR_UPSTREAM_PROTOCOL', context, problem, options);
  }
}
