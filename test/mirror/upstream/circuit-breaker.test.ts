import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker } from '../../../src/mirror/upstream/circuit-breaker.ts';

describe('circuit breaker', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('opens after the threshold of failures in a row, and a success in between starts the count over', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 10_000 });
    breaker.failed();
    breaker.failed();
    breaker.succeeded();
    breaker.failed();
    breaker.failed();
    expect(breaker.tryPass()).toBe(true);
    breaker.failed();
    expect(breaker.state).toBe('open');
    expect(breaker.tryPass()).toBe(false);
  });

  it('lets exactly one trial through after the cooldown; its success closes the circuit', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10_000 });
    breaker.failed();
    vi.advanceTimersByTime(9_999);
    expect(breaker.tryPass()).toBe(false);
    vi.advanceTimersByTime(1);
    expect(breaker.tryPass()).toBe(true);
    expect(breaker.tryPass()).toBe(false);
    breaker.succeeded();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryPass()).toBe(true);
  });

  it('opens for another cooldown when the trial fails, and frees the trial when it is abandoned', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1_000 });
    breaker.failed();
    breaker.failed();
    vi.advanceTimersByTime(1_000);
    expect(breaker.tryPass()).toBe(true);
    breaker.abandoned();
    expect(breaker.tryPass()).toBe(true);
    breaker.failed();
    expect(breaker.tryPass()).toBe(false);
    expect(breaker.retryAt!.getTime()).toBe(Date.now() + 1_000);
  });

  it('never opens with a threshold of 0', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 0 });
    for (let i = 0; i < 100; i++) breaker.failed();
    expect(breaker.tryPass()).toBe(true);
  });
});
