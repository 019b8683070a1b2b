/** A quota header's value: Docker Hub sends `RateLimit-Limit: 100;w=21600` (100 pulls per 6 hours). */
export interface RateLimitQuota {
  value: number;
  /** The window in seconds (`w=`), when given. */
  windowSeconds: number | undefined;
}

/** What an upstream last said about its rate limit. */
export interface RateLimitState {
  limit: RateLimitQuota | undefined;
  remaining: RateLimitQuota | undefined;
  /** From `Retry-After`, as seconds from when the answer arrived. */
  retryAfterSeconds: number | undefined;
  observedAt: Date;
}

type HeaderValue = string | string[] | undefined;

/** `100`, `100;w=21600` or `76;w=21600;comment="…"`; undefined when absent or unreadable. */
export function parseRateLimitQuota(header: HeaderValue): RateLimitQuota | undefined {
  const value = first(header);
  if (value === undefined) return undefined;
  const [count, ...params] = value.split(';').map((part) => part.trim());
  if (!count || !/^\d+$/.test(count)) return undefined;
  let windowSeconds: number | undefined;
  for (const param of params) {
    const match = /^w\s*=\s*(\d+)$/i.exec(param);
    if (match) windowSeconds = Number(match[1]);
  }
  return { value: Number(count), windowSeconds };
}

/** `Retry-After` as whole seconds from `now`: delay-seconds, or an HTTP date (a past date is 0). */
export function parseRetryAfter(header: HeaderValue, now = Date.now()): number | undefined {
  const value = first(header)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  // HTTP dates name the weekday and the month; a bare number was handled above.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** The rate-limit headers of a response, or undefined when it carries none of them. */
export function readRateLimit(
  headers: Record<string, HeaderValue>,
  now = Date.now(),
): RateLimitState | undefined {
  const limit = parseRateLimitQuota(headers['ratelimit-limit']);
  const remaining = parseRateLimitQuota(headers['ratelimit-remaining']);
  const retryAfterSeconds = parseRetryAfter(headers['retry-after'], now);
  if (!limit && !remaining && retryAfterSeconds === undefined) return undefined;
  return { limit, remaining, retryAfterSeconds, observedAt: new Date(now) };
}

function first(header: HeaderValue): string | undefined {
  return Array.isArray(header) ? header[0] : header;
}
