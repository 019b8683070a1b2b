import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryResource } from '../../../src/cli/resources.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';
import { waitFor } from '../../helpers/tools.ts';
import { startReceiver, type WebhookReceiver } from '../../helpers/webhook-receiver.ts';

interface DeliveryPage {
  deliveries: DeliveryResource[];
  next?: string;
}

describe('REST API: test events, the delivery log and replays', () => {
  let slipway: TestSlipway;
  let receiver: WebhookReceiver;
  let root: ApiCaller;
  let subscription: { id: string; secret: string };

  beforeAll(async () => {
    [slipway, receiver] = await Promise.all([
      startSecuredSlipway(),
      startReceiver(() => ({ status: 200, body: 'thanks' })),
    ]);
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    await root.post('/organizations', { name: 'acme' });
    await root.post('/repositories', { name: 'acme/app' });
    const created = await root.post<{ id: string; secret: string }>('/repositories/acme/app/notifications', {
      events: ['repo_push'],
      method: 'webhook',
      url: receiver.url,
    });
    expect(created.status).toBe(201);
    subscription = created.body;
  });
  afterAll(async () => {
    await slipway?.stop();
    await receiver?.close();
  });

  const deliveryOf = async (id: string) =>
    (await root.get<DeliveryResource>(`/notifications/${subscription.id}/deliveries/${id}`)).body;

  it('sends a signed test event, shows the delivery with its attempt, and replays it with the same id', async () => {
    const queued = await root.post<DeliveryResource>(`/notifications/${subscription.id}/test`);
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ subscriptionId: subscription.id, eventKind: 'repo_push' });

    const first = await waitFor('the test event', () => receiver.received[0]);
    expect(first.headers['webhook-id']).toBe(queued.body.id);
    const payload = new Webhook(subscription.secret).verify(
      first.body,
      first.headers as Record<string, string>,
    ) as Record<string, unknown>;
    expect(payload).toMatchObject({ kind: 'repo_push', test: true, repository: 'acme/app' });

    const delivered = await waitFor('the delivery to be logged as delivered', async () => {
      const delivery = await deliveryOf(queued.body.id);
      return delivery.status === 'delivered' ? delivery : undefined;
    });
    expect(delivered.attempts).toBe(1);
    expect(delivered.attemptLog).toHaveLength(1);
    const attempt = delivered.attemptLog[0]!;
    expect(attempt).toMatchObject({ statusCode: 200, success: true, error: null });
    expect(attempt.latencyMs).toBeGreaterThanOrEqual(0);
    expect(attempt.responseExcerpt).toBe('thanks');
    expect(delivered.payload).toMatchObject({ kind: 'repo_push', test: true });

    const page = await root.get<DeliveryPage>(`/notifications/${subscription.id}/deliveries`);
    expect(page.status).toBe(200);
    expect(page.body.deliveries.map((d) => d.id)).toEqual([queued.body.id]);
    expect(page.body.deliveries[0]!.attemptLog[0]).toMatchObject({ statusCode: 200 });
    const dead = await root.get<DeliveryPage>(`/notifications/${subscription.id}/deliveries?status=dead`);
    expect(dead.body.deliveries).toEqual([]);

    const replayed = await root.post<DeliveryResource>(
      `/notifications/${subscription.id}/deliveries/${queued.body.id}/replay`,
    );
    expect(replayed.status).toBe(202);
    expect(replayed.body.id).toBe(queued.body.id);
    const second = await waitFor('the replay', () => receiver.received[1]);
    expect(second.headers['webhook-id']).toBe(queued.body.id);
    expect(JSON.parse(second.body)).toEqual(JSON.parse(first.body));
    await waitFor('the replay to be logged', async () =>
      (await deliveryOf(queued.body.id)).attemptLog.length === 2 ? true : undefined,
    );
  });

  it('pages the delivery log and refuses bad queries and deliveries of other subscriptions', async () => {
    for (let i = 0; i < 2; i++) {
      expect((await root.post(`/notifications/${subscription.id}/test`)).status).toBe(202);
    }
    const first = await root.get<DeliveryPage>(`/notifications/${subscription.id}/deliveries?limit=1`);
    expect(first.body.deliveries).toHaveLength(1);
    expect(first.body.next).toBeDefined();
    const second = await root.get<DeliveryPage>(
      `/notifications/${subscription.id}/deliveries?limit=1&before=${encodeURIComponent(first.body.next!)}`,
    );
    expect(second.body.deliveries).toHaveLength(1);
    expect(second.body.deliveries[0]!.id).not.toBe(first.body.deliveries[0]!.id);

    const badStatus = await root.get(`/notifications/${subscription.id}/deliveries?status=lost`);
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error?.message).toMatch(/^querystring\/status: /);
    expect((await root.get(`/notifications/${subscription.id}/deliveries?limit=0`)).status).toBe(400);

    const other = await root.post<{ id: string }>('/namespaces/acme/notifications', {
      events: ['repo_push'],
      method: 'webhook',
      url: receiver.url,
    });
    const someDelivery = first.body.deliveries[0]!.id;
    const elsewhere = await root.get(`/notifications/${other.body.id}/deliveries/${someDelivery}`);
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.body.error?.message).toBe(
      `subscription ${other.body.id} has no delivery ${someDelivery}`,
    );
    expect(
      (await root.post(`/notifications/${other.body.id}/deliveries/${someDelivery}/replay`)).status,
    ).toBe(404);
    expect((await root.get(`/notifications/${subscription.id}/deliveries/no-such-delivery`)).status).toBe(
      404,
    );
  });
});
