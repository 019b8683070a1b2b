import { setTimeout as sleep } from 'node:timers/promises';
import { OciError } from '../../registry/errors.ts';
import {
  UpstreamNotFoundError,
  UpstreamProtocolError,
  UpstreamRateLimitedError,
  UpstreamUnauthorizedError,
} from '../upstream/errors.ts';

export interface RetryPolicy {
  /** Tries in all, the first included. Default 3. */
  attempts?: number;
  /** The wait before the first retry; each further one waits twice as long. Default 1 s. */
  baseDelayMs?: number;
  /** The longest wait, whatever Retry-After asks. Default 60 s. */
  maxDelayMs?: number;
}

const defaults = { attempts: 3, baseDelayMs: 1_000, maxDelayMs: 60_000 };

/**
 * Runs `attempt` until it succeeds, it fails for good (see `isRetryable`), the tries are used up or
 * `signal` aborts; the last error is thrown. A rate-limited upstream's Retry-After is honoured.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy = {},
  signal?: AbortSignal,
): Promise<T> {
  const attempts = Math.max(1, policy.attempts ?? defaults.attempts);
  for (let tried = 1; ; tried++) {
    try {
      return await attempt();
    } catch (error) {
      if (tried >= attempts || signal?.aborted || !isRetryable(error)) throw error;
      await sleep(retryDelay(error, tried, policy), undefined, { signal });
    }
  }
}

/**
 * Whether trying again may help: not for what is missing or forbidden upstream, an answer the client
 * cannot use, or content the local registry rejects (a wrong digest excepted: the bytes may have been
 * damaged on the way).
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof UpstreamNotFoundError) return false;
  if (error instanceof UpstreamUnauthorizedError) return false;
  if (error instanceof UpstreamProtocolError) return false;
  if (error instanceof OciError) return error.code === 'DIGEST_INVALID';
  return !(error instanceof Error && error.name === 'AbortError');
}

function retryDelay(error: unknown, tried: number, policy: RetryPolicy): number {
  const backoff = (policy.baseDelayMs ?? defaults.baseDelayMs) * 2 ** (tried - 1);
  const asked =
    error instanceof UpstreamRateLimitedError && error.retryAfterSeconds !== undefined
      ? error.retryAfterSeconds * 1000
      : 0;
  return Math.min(Math.max(backoff, asked), policy.maxDelayMs ?? defaults.maxDelayMs);
}
