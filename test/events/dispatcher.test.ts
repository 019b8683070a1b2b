import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryLog } from '../../src/events/delivery-log.ts';
import { Sweeper } from '../../src/events/sweeper.ts';
import {
  allDispatched,
  organizationWith,
  settledDeliveries,
  startEventGateway,
  subscribe,
  type EventGateway,
} from '../helpers/events.ts';
import { waitFor } from '../helpers/tools.ts';
import { startReceiver, verified, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const quiet = { info() {}, warn() {}, error() {} };

/** Two gateways of one installation (one database, one Redis), both dispatching and delivering. */
describe('dispatch from several processes', () => {
  let first: EventGateway;
  let second: EventGateway;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    const secretKey = randomBytes(32).toString('base64');
    first = await startEventGateway({ database: 'postgres', config: { secretKey } });
    second = await startEventGateway({
      database: 'postgres',
      config: { secretKey, database: { schema: first.slipway.services.config.database.schema } },
    });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await Promise.all([first?.slipway.stop(), second?.slipway.stop()]);
  });

  it('fans each event out once, whichever process takes it', async () => {
    await organizationWith(first, 'many/app');
    const subscription = await subscribe(first.slipway, { namespace: 'many', url: receiver.url });
    const pushes = Array.from({ length: 12 }, (_, i) =>
      (i % 2 ? second : first).client.pushImage('many/app', `t${i}`),
    );
    await Promise.all(pushes);
    const deliveries = await settledDeliveries(first.slipway, subscription.id, 12);
    await sleep(300);

    expect(new Set(deliveries.map((d) => d.eventId)).size).toBe(12);
    expect(deliveries.every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    expect(receiver.received).toHaveLength(12);
    const ids = receiver.received.map((r) => r.headers['webhook-id']);
    expect(new Set(ids)).toEqual(new Set(deliveries.map((d) => d.id)));
    const tags = receiver.received.map((r) => verified<{ updated_tags: string[] }>(subscription.secret!, r));
    expect(tags.flatMap((p) => p.updated_tags).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `t${i}`).sort(),
    );
  });

  it('queues again a pending delivery whose job was lost', async () => {
    const { services } = first.slipway;
    await organizationWith(first, 'lost/app');
    const late = await startReceiver();
    try {
      await first.client.pushImage('lost/app', 'v1');
      await allDispatched(first.slipway);
      // A delivery committed by a process that died before queueing it.
      const subscription = await subscribe(first.slipway, { namespace: 'lost', url: late.url });
      const { rows } = await services.db.query<{ id: string }>(
        `SELECT id FROM events WHERE repository = 'lost/app' AND kind = 'repo_push'`,
      );
      const deliveryId = randomUUID();
      await services.db.query(
        `INSERT INTO deliveries (id, subscription_id, event_id, queued_at)
         VALUES ($1, $2, $3, now() - interval '30 seconds')`,
        [deliveryId, subscription.id, rows[0]!.id],
      );
      await sleep(300);
      expect(late.received).toEqual([]);

      const sweeper = new Sweeper({
        log: new DeliveryLog(services.db),
        queue: services.eventDelivery.queue,
        logger: quiet,
        intervalMs: 60_000,
        graceMs: 10_000,
      });
      expect(await sweeper.sweep()).toBe(1);
      const request = await waitFor('the swept delivery', () => late.received[0]);
      expect(request.headers['webhook-id']).toBe(deliveryId);
      await settledDeliveries(first.slipway, subscription.id, 1, 'delivered');
      expect(await sweeper.sweep()).toBe(0);
    } finally {
      await late.close();
    }
  });
});
