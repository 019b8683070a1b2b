import { expect } from 'vitest';

/** What `promise` rejects with, for a test to inspect; fails the test when it resolves. */
export function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('expected the call to fail'),
    (error: unknown) => error,
  );
}
