import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { notFound } from '../errors.ts';
import type { DeliveryLog } from './delivery-log.ts';
import type { DeliveryQueue } from './delivery-queue.ts';
import type { Delivery, DeliveryControl, DeliveryPage, DeliveryStatus } from './model.ts';
import { insertEvent, type Outbox } from './outbox.ts';
import { sampleEventFields } from './samples.ts';
import type { SubscriptionStore } from './subscriptions.ts';

export interface DeliveryControlOptions {
  db: Database;
  log: DeliveryLog;
  queue: DeliveryQueue;
  outbox: Outbox;
  subscriptions: SubscriptionStore;
}

/** Test events, the delivery log and replays, for the API. */
export class DeliveryCommands implements DeliveryControl {
  readonly #options: DeliveryControlOptions;

  constructor(options: DeliveryControlOptions) {
    this.#options = options;
  }

  async sendTest(subscriptionId: string): Promise<Delivery> {
    const { db, log, queue, outbox, subscriptions } = this.#options;
    const subscription = await subscriptions.get(subscriptionId);
    if (!subscription) throw notFound(`subscription ${subscriptionId} does not exist`);
    const kind = subscription.events[0]!;
    const payload = outbox.payload(
      kind,
      { namespace: subscription.namespace, repository: subscription.repository },
      sampleEventFields(kind),
      { test: true },
    );
    const id = randomUUID();
    await db.transaction(async (tx) => {
      // Stored as dispatched already: a sample goes to this subscription alone.
      await insertEvent(tx, payload, new Date());
      await log.insert(tx, [{ id, subscriptionId, eventId: payload.id }]);
    });
    await queue.enqueue({ id, generation: 0 });
    return (await log.get(id))!;
  }

  listDeliveries(
    subscriptionId: string,
    options: { limit: number; before?: string; status?: DeliveryStatus },
  ): Promise<DeliveryPage> {
    return this.#options.log.list(subscriptionId, options);
  }

  getDelivery(deliveryId: string): Promise<Delivery | null> {
    return this.#options.log.get(deliveryId);
  }

  async replay(deliveryId: string): Promise<Delivery> {
    const { log, queue } = this.#options;
    const ref = await log.reopen(deliveryId);
    if (!ref) throw notFound(`delivery ${deliveryId} does not exist`);
    // A retry of the previous generation may still wait in the queue: it would only find itself stale.
    await queue.discard({ id: ref.id, generation: ref.generation - 1 });
    await queue.enqueue(ref);
    return (await log.get(deliveryId))!;
  }
}
