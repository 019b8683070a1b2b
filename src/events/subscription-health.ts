import type { Queryable } from '../db/database.ts';
import type { DeliveryAttempt, Subscription } from './model.ts';
import type { Outbox } from './outbox.ts';

/**
 * What deliveries' outcomes do to their subscription: a success forgets earlier failures; a dead
 * delivery counts one more, and `disableAfter` in a row disable it; a `410 Gone` disables it at once.
 * Disabling writes a `subscription_disabled` event, in the same transaction, for whoever listens.
 */
export class SubscriptionHealth {
  readonly #outbox: Outbox;
  readonly #disableAfter: number;

  constructor(options: { outbox: Outbox; disableAfterDeadDeliveries: number }) {
    this.#outbox = options.outbox;
    this.#disableAfter = options.disableAfterDeadDeliveries;
  }

  async delivered(tx: Queryable, subscriptionId: string): Promise<void> {
    await tx.query(
      'UPDATE subscriptions SET consecutive_failures = 0 WHERE id = $1 AND consecutive_failures <> 0',
      [subscriptionId],
    );
  }

  /** Counts a dead delivery; returns true when that disabled the subscription. */
  async dead(tx: Queryable, subscription: Subscription, lastError: string | null): Promise<boolean> {
    const { rows } = await tx.query<{ consecutive_failures: number }>(
      `UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1
        WHERE id = $1 RETURNING consecutive_failures`,
      [subscription.id],
    );
    const failures = rows[0]?.consecutive_failures ?? 0;
    if (failures < this.#disableAfter) return false;
    return this.#disable(
      tx,
      subscription,
      `${failures} deliveries in a row failed every attempt; last error: ${lastError ?? 'unknown'}; re-enable it once the endpoint works`,
    );
  }

  /** The endpoint answered 410 Gone: it wants no more deliveries. */
  async gone(tx: Queryable, subscription: Subscription, attempt: DeliveryAttempt): Promise<boolean> {
    return this.#disable(
      tx,
      subscription,
      `the endpoint answered 410 Gone at ${attempt.attemptedAt.toISOString()}, asking for no more deliveries; re-enable it once the endpoint works`,
    );
  }

  async #disable(tx: Queryable, subscription: Subscription, reason: string): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE subscriptions SET enabled = false, disabled_reason = $2, updated_at = now()
        WHERE id = $1 AND enabled`,
      [subscription.id, reason],
    );
    if (rowCount === 0) return false;
    await this.#outbox.write(
      tx,
      'subscription_disabled',
      { namespace: subscription.namespace, repository: subscription.repository },
      { subscription_id: subscription.id, title: subscription.title, reason },
    );
    return true;
  }
}
