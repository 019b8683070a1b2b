import { describe, expect, it } from 'vitest';
import {
  parseRateLimitQuota,
  parseRetryAfter,
  readRateLimit,
} from '../../../src/mirror/upstream/rate-limit.ts';

describe('rate-limit headers', () => {
  it("reads Docker Hub's quota form, a bare count, and refuses anything else", () => {
    expect(parseRateLimitQuota('100;w=21600')).toEqual({ value: 100, windowSeconds: 21600 });
    expect(parseRateLimitQuota(' 76 ; w=21600 ; comment="anonymous"')).toEqual({
      value: 76,
      windowSeconds: 21600,
    });
    expect(parseRateLimitQuota('5000')).toEqual({ value: 5000, windowSeconds: undefined });
    expect(parseRateLimitQuota(['7;w=60', '8;w=60'])).toEqual({ value: 7, windowSeconds: 60 });
    expect(parseRateLimitQuota('many')).toBeUndefined();
    expect(parseRateLimitQuota('-1;w=60')).toBeUndefined();
    expect(parseRateLimitQuota(undefined)).toBeUndefined();
  });

  it('reads Retry-After as seconds or as an HTTP date from now', () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:01:30 GMT', now)).toBe(90);
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('reports the state only when a response carries one of the headers', () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    expect(readRateLimit({ 'content-type': 'application/json' }, now)).toBeUndefined();
    expect(
      readRateLimit(
        { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600', 'retry-after': '30' },
        now,
      ),
    ).toEqual({
      limit: { value: 100, windowSeconds: 21600 },
      remaining: { value: 0, windowSeconds: 21600 },
      retryAfterSeconds: 30,
      observedAt: new Date(now),
    });
  });
});
