import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destinationProblem } from '../../src/events/destinations.ts';
import { SubscriptionStore } from '../../src/events/subscriptions.ts';
import {
  organizationWith,
  settledDeliveries,
  startEventGateway,
  subscribe,
  type EventGateway,
} from '../helpers/events.ts';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

describe('which destinations a subscription may send to', () => {
  const refused: Array<[string, string]> = [
    ['http://127.0.0.1:8080/hook', 'a loopback address'],
    ['http://2130706433/', 'a loopback address'],
    ['http://[::1]/', 'a loopback address'],
    ['http://localhost:3000/', 'a loopback address'],
    ['https://api.localhost./', 'a loopback address'],
    ['http://10.1.2.3/', 'a private (RFC 1918) address'],
    ['http://172.16.0.1/', 'a private (RFC 1918) address'],
    ['http://192.168.1.10/', 'a private (RFC 1918) address'],
    ['http://169.254.169.254/latest/meta-data', 'a link-local address'],
    ['http://[fe80::1]/', 'a link-local address'],
    ['http://100.64.0.1/', 'a carrier-grade NAT (RFC 6598) address'],
    ['http://[fd12:3456::1]/', 'a unique-local (fc00::/7) address'],
    ['http://224.0.0.1/', 'a multicast address'],
    ['http://[ff02::1]/', 'a multicast address'],
    ['http://0.0.0.0/', 'the unspecified address'],
    ['http://[::]/', 'the unspecified address'],
    ['http://[::ffff:127.0.0.1]/', 'a loopback address'],
    ['http://[::ffff:10.0.0.1]/', 'a private (RFC 1918) address'],
    ['http://[64:ff9b::192.168.0.1]/', 'a private (RFC 1918) address'],
  ];

  it.each(refused)('refuses %s as %s', (url, what) => {
    expect(destinationProblem(new URL(url), false)).toContain(what);
    expect(destinationProblem(new URL(url), true)).toBeNull();
  });

  it.each([
    'https://hooks.example.com/x',
    'http://93.184.215.14/',
    'http://[2606:4700::1111]/',
    'http://[64:ff9b::808:808]/',
  ])('allows the public destination %s', (url) => {
    expect(destinationProblem(new URL(url), false)).toBeNull();
  });
});

/** With private destinations refused, as in production: nothing reaches a loopback receiver. */
describe('delivery with private destinations refused', () => {
  let gateway: EventGateway;
  let receiver: WebhookReceiver;
  /** A store without the check, as if the subscription was saved while private destinations were allowed. */
  let unchecked: SubscriptionStore;

  beforeAll(async () => {
    [gateway, receiver] = await Promise.all([
      startEventGateway({ config: { events: { allowPrivateDestinations: false, retrySchedule: [0.1] } } }),
      startReceiver(),
    ]);
    const { db, sealedBox } = gateway.slipway.services;
    unchecked = new SubscriptionStore({ db, sealedBox });
    await organizationWith(gateway, 'ssrf/app');
  });
  afterAll(async () => {
    await receiver?.close();
    await gateway?.slipway.stop();
  });

  it('refuses to create a subscription to a loopback address or localhost', async () => {
    for (const url of [receiver.url, `http://localhost:${receiver.port}/`]) {
      await expect(subscribe(gateway.slipway, { namespace: 'ssrf', url })).rejects.toMatchObject({
        code: 'SLW_ERR_INVALID',
        status: 400,
        message: expect.stringContaining('is a loopback address') as unknown,
      });
    }
  });

  it('refuses at send time a name that resolves to loopback, and sends nothing', async () => {
    const subscription = await unchecked.create({
      namespace: 'ssrf',
      events: ['repo_push'],
      method: 'webhook',
      url: `http://localhost:${receiver.port}/hook`,
      createdBy: 'test',
    });
    await gateway.slipway.services.deliveries.sendTest(subscription.id);
    const [dead] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    expect(dead).toMatchObject({ status: 'dead', attempts: 2 });
    for (const attempt of dead!.attemptLog) {
      expect(attempt).toMatchObject({ statusCode: null, success: false });
      expect(attempt.error).toMatch(/^localhost resolves to (127\.0\.0\.1|::1), a loopback address: /);
    }
    await sleep(100);
    expect(receiver.received).toEqual([]);
  });

  it('refuses at send time a literal loopback address saved earlier', async () => {
    const subscription = await unchecked.create({
      namespace: 'ssrf',
      events: ['repo_push'],
      method: 'webhook',
      url: receiver.url,
      createdBy: 'test',
    });
    await gateway.client.pushImage('ssrf/app', 'v1');
    const [dead] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    expect(dead!.attemptLog.map((a) => a.error)).toEqual(
      Array(2).fill(
        'refused: 127.0.0.1 is a loopback address: private destinations are refused unless events.allowPrivateDestinations is on',
      ),
    );
    expect(receiver.received).toEqual([]);
  });
});
