import type { Delivery, DeliveryStatus, Subscription } from '../../src/events/model.ts';
import type { NewSubscription } from '../../src/events/subscriptions.ts';
import { adminPassword, adminUser } from './auth.ts';
import { IdentityFixtures } from './identity-fixtures.ts';
import { OciClient } from './oci-client.ts';
import { startSlipway, type TestSlipway, type TestSlipwayOptions } from './slipway.ts';
import { waitFor } from './tools.ts';

export interface EventGateway {
  slipway: TestSlipway;
  identity: IdentityFixtures;
  /** Pushes without credentials: the gateway runs with authentication off. */
  client: OciClient;
}

/**
 * A gateway for event tests: /v2 open to pushes, and a superuser to create the organizations and
 * repositories that subscriptions belong to.
 */
export async function startEventGateway(options: TestSlipwayOptions = {}): Promise<EventGateway> {
  const slipway = await startSlipway({
    ...options,
    config: {
      ...options.config,
      auth: { enabled: false, adminUser, adminPassword, ...options.config?.auth },
    },
  });
  return { slipway, identity: await IdentityFixtures.of(slipway), client: new OciClient(slipway.url) };
}

/** An organization with one repository in it. */
export async function organizationWith(gateway: EventGateway, repository: string): Promise<void> {
  const namespace = repository.slice(0, repository.indexOf('/'));
  if (
    !(await gateway.slipway.services.db.query('SELECT 1 FROM accounts WHERE name = $1', [namespace])).rows[0]
  )
    await gateway.identity.organization(namespace);
  await gateway.identity.repository(repository);
}

/** A webhook subscription to repo_push unless told otherwise. */
export function subscribe(
  slipway: TestSlipway,
  input: Partial<NewSubscription> & { namespace: string; url: string },
): Promise<Subscription> {
  return slipway.services.subscriptions.create({
    events: ['repo_push'],
    method: 'webhook',
    createdBy: 'test',
    ...input,
  });
}

/** The subscription's deliveries once there are `count` and none is pending any more, newest first. */
export function settledDeliveries(
  slipway: TestSlipway,
  subscriptionId: string,
  count: number,
  status?: DeliveryStatus,
): Promise<Delivery[]> {
  return waitFor(`${count} finished deliveries of subscription ${subscriptionId}`, async () => {
    const { items } = await slipway.services.deliveries.listDeliveries(subscriptionId, {
      limit: 100,
      ...(status ? { status } : {}),
    });
    return items.length === count && items.every((d) => d.status !== 'pending') ? items : undefined;
  });
}

/** Until every event in the outbox was fanned out. */
export function allDispatched(slipway: TestSlipway): Promise<true> {
  return waitFor('every event to be dispatched', async () => {
    const { rows } = await slipway.services.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM events WHERE dispatched_at IS NULL',
    );
    return rows[0]!.n === 0 ? true : undefined;
  });
}
