export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5; 0 never opens it. */
  failureThreshold?: number;
  /** How long an open circuit refuses requests before one is let through to try. Default 30 s. */
  cooldownMs?: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * Stops asking an upstream that keeps failing (no answer, timeouts, 5xx), so that a dead upstream
 * costs each pull nothing instead of a timeout: after `failureThreshold` failures in a row requests
 * are refused at once for `cooldownMs`; then a single request is let through, and its outcome closes
 * the circuit or opens it for another cooldown.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  #failures = 0;
  #openedAt: number | undefined;
  #trialRunning = false;

  constructor(options: CircuitBreakerOptions = {}) {
    this.#threshold = options.failureThreshold ?? 5;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
  }

  get state(): CircuitState {
    if (this.#openedAt === undefined) return 'closed';
    return this.#trialRunning || Date.now() >= this.#openedAt + this.#cooldownMs ? 'half-open' : 'open';
  }

  /**
   * Whether a request may go out now. While open, no; once the cooldown is over, yes for exactly
   * one request (the trial) until its outcome is reported.
   */
  tryPass(): boolean {
    if (this.#openedAt === undefined) return true;
    if (this.#trialRunning || Date.now() < this.#openedAt + this.#cooldownMs) return false;
    this.#trialRunning = true;
    return true;
  }

  /** When the circuit lets a trial request through, if it is open. */
  get retryAt(): Date | undefined {
    return this.#openedAt === undefined ? undefined : new Date(this.#openedAt + this.#cooldownMs);
  }

  succeeded(): void {
    this.#failures = 0;
    this.#openedAt = undefined;
    this.#trialRunning = false;
  }

  failed(): void {
    this.#failures++;
    if (this.#trialRunning || (this.#threshold > 0 && this.#failures >= this.#threshold)) {
      this.#openedAt = Date.now();
    }
    this.#trialRunning = false;
  }

  /** The request ended with no outcome to judge (its caller gave up on it): another may try. */
  abandoned(): void {
    this.#trialRunning = false;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.#failures;
  }
}
