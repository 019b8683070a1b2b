import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPayload } from '../../src/events/catalog.ts';
import { slackMessage } from '../../src/events/slack.ts';
import {
  allDispatched,
  organizationWith,
  settledDeliveries,
  startEventGateway,
  subscribe,
  type EventGateway,
} from '../helpers/events.ts';
import { freePort } from '../helpers/gateway-process.ts';
import { metric } from '../helpers/registry-http.ts';
import { waitFor } from '../helpers/tools.ts';
import { startReceiver, verified, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

/**
 * Delivery end to end in one gateway: registry pushes become events, the dispatcher fans them out to
 * matching subscriptions, the worker signs and sends them to real HTTP endpoints, retrying on the
 * (shortened) schedule, and the outcomes land in the delivery log and on the subscription.
 */
describe('event delivery to webhooks and Slack', () => {
  let gateway: EventGateway;
  const receivers: WebhookReceiver[] = [];

  async function receiver(...args: Parameters<typeof startReceiver>): Promise<WebhookReceiver> {
    const started = await startReceiver(...args);
    receivers.push(started);
    return started;
  }

  beforeAll(async () => {
    gateway = await startEventGateway({
      config: { events: { retrySchedule: [0.2, 0.2], timeout: 2, disableAfterDeadDeliveries: 2 } },
    });
  });
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await gateway?.slipway.stop();
  });

  const services = () => gateway.slipway.services;

  it('sends one signed delivery per matching subscription for a push, and a replay with the same id', async () => {
    await organizationWith(gateway, 'single/app');
    const [forRepository, forNamespace] = [await receiver(), await receiver()];
    const repositorySub = await subscribe(gateway.slipway, {
      namespace: 'single',
      repository: 'single/app',
      url: forRepository.url,
    });
    const namespaceSub = await subscribe(gateway.slipway, { namespace: 'single', url: forNamespace.url });

    const image = await gateway.client.pushImage('single/app', 'v1');
    const [delivery] = await settledDeliveries(gateway.slipway, repositorySub.id, 1);
    const [other] = await settledDeliveries(gateway.slipway, namespaceSub.id, 1);
    await sleep(300);
    expect(forRepository.received).toHaveLength(1);
    expect(forNamespace.received).toHaveLength(1);

    const request = forRepository.received[0]!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/hook');
    expect(request.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': `Slipway-Webhooks/${version}`,
      'x-slipway-event': 'repo_push',
      'webhook-id': delivery!.id,
    });
    const payload = verified<EventPayload<'repo_push'>>(repositorySub.secret!, request);
    expect(payload).toMatchObject({
      kind: 'repo_push',
      repository: 'single/app',
      updated_tags: ['v1'],
      digest: image.digest,
    });
    expect(verified(namespaceSub.secret!, forNamespace.received[0]!)).toEqual(payload);
    expect(forNamespace.received[0]!.headers['webhook-id']).toBe(other!.id);
    expect(other!.id).not.toBe(delivery!.id);
    // The event id is the same for both subscriptions: the key to drop an event heard twice.
    expect(request.headers['x-slipway-event-id']).toBe(payload.id);
    expect(forNamespace.received[0]!.headers['x-slipway-event-id']).toBe(payload.id);
    expect(() => verified(namespaceSub.secret!, request)).toThrow();
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, eventKind: 'repo_push' });

    const replayed = await services().deliveries.replay(delivery!.id);
    expect(replayed).toMatchObject({ id: delivery!.id, status: 'pending' });
    const again = await waitFor('the replay', () => forRepository.received[1]);
    expect(again.headers['webhook-id']).toBe(delivery!.id);
    expect(verified(repositorySub.secret!, again)).toEqual(payload);
    const [afterReplay] = await settledDeliveries(gateway.slipway, repositorySub.id, 1);
    expect(afterReplay).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('sends a namespace subscription every repository and a repository subscription only its own', async () => {
    await organizationWith(gateway, 'scope/a');
    await organizationWith(gateway, 'scope/b');
    const [all, onlyA] = [await receiver(), await receiver()];
    const namespaceSub = await subscribe(gateway.slipway, { namespace: 'scope', url: all.url });
    const repositorySub = await subscribe(gateway.slipway, {
      namespace: 'scope',
      repository: 'scope/a',
      url: onlyA.url,
    });
    await gateway.client.pushImage('scope/a', '1');
    await gateway.client.pushImage('scope/b', '1');
    await settledDeliveries(gateway.slipway, namespaceSub.id, 2);
    await allDispatched(gateway.slipway);
    const [onlyDelivery] = await settledDeliveries(gateway.slipway, repositorySub.id, 1);
    expect(onlyDelivery!.payload.repository).toBe('scope/a');
    const repositories = all.received.map((r) => (JSON.parse(r.body) as EventPayload).repository).sort();
    expect(repositories).toEqual(['scope/a', 'scope/b']);
    expect(onlyA.received).toHaveLength(1);
  });

  it('drops pushes whose tags the subscription filter does not match', async () => {
    await organizationWith(gateway, 'globs/app');
    const releases = await receiver();
    const subscription = await subscribe(gateway.slipway, {
      namespace: 'globs',
      filter: 'release-*',
      url: releases.url,
    });
    await gateway.client.pushImage('globs/app', 'latest');
    await gateway.client.pushImage('globs/app', 'release-1');
    await allDispatched(gateway.slipway);
    const [delivery] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    expect(delivery!.payload).toMatchObject({ updated_tags: ['release-1'] });
    expect(
      releases.received.map((r) => (JSON.parse(r.body) as { updated_tags: string[] }).updated_tags),
    ).toEqual([['release-1']]);
  });

  it('retries a failing endpoint on the schedule and records each attempt', async () => {
    await organizationWith(gateway, 'retry/app');
    const flaky = await receiver((n) => (n < 2 ? { status: 500, body: 'boom' } : { status: 204 }));
    const subscription = await subscribe(gateway.slipway, { namespace: 'retry', url: flaky.url });
    await gateway.client.pushImage('retry/app', 'v1');
    const [delivery] = await settledDeliveries(gateway.slipway, subscription.id, 1);

    expect(delivery).toMatchObject({ status: 'delivered', attempts: 3, nextAttemptAt: null });
    expect(delivery!.attemptLog.map((a) => [a.statusCode, a.success, a.error, a.responseExcerpt])).toEqual([
      [500, false, 'the endpoint answered 500 Internal Server Error', 'boom'],
      [500, false, 'the endpoint answered 500 Internal Server Error', 'boom'],
      [204, true, null, null],
    ]);
    for (const attempt of delivery!.attemptLog) expect(attempt.latencyMs).toBeGreaterThanOrEqual(0);
    const times = delivery!.attemptLog.map((a) => a.attemptedAt.getTime());
    // 0.2 s with ±20% jitter between attempts.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(150);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(150);
    expect(new Set(flaky.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([delivery!.id]));
    expect((await services().subscriptions.get(subscription.id))!.consecutiveFailures).toBe(0);
  });

  it('keeps a delivery that failed every attempt as a dead letter, and replays it once the endpoint is back', async () => {
    await organizationWith(gateway, 'gone/app');
    const port = await freePort();
    const subscription = await subscribe(gateway.slipway, {
      namespace: 'gone',
      url: `http://127.0.0.1:${port}/hook`,
    });
    await gateway.client.pushImage('gone/app', 'v1');
    const [dead] = await settledDeliveries(gateway.slipway, subscription.id, 1, 'dead');
    expect(dead).toMatchObject({ status: 'dead', attempts: 3, nextAttemptAt: null });
    expect(dead!.finishedAt).toBeInstanceOf(Date);
    for (const attempt of dead!.attemptLog) {
      expect(attempt).toMatchObject({ statusCode: null, success: false, responseExcerpt: null });
      expect(attempt.error).toMatch(/ECONNREFUSED/);
    }
    expect(
      (await services().deliveries.listDeliveries(subscription.id, { limit: 10, status: 'delivered' })).items,
    ).toEqual([]);
    expect(await services().subscriptions.get(subscription.id)).toMatchObject({
      enabled: true,
      consecutiveFailures: 1,
    });

    const back = await receiver(undefined, port);
    await services().deliveries.replay(dead!.id);
    const request = await waitFor('the replayed dead letter', () => back.received[0]);
    expect(request.headers['webhook-id']).toBe(dead!.id);
    expect(verified(subscription.secret!, request)).toEqual(dead!.payload);
    const [delivered] = await settledDeliveries(gateway.slipway, subscription.id, 1, 'delivered');
    expect(delivered!.attempts).toBe(4);
  });

  it('disables a subscription after dead deliveries in a row, tells subscription_disabled listeners, and resumes once re-enabled', async () => {
    await organizationWith(gateway, 'flaky/app');
    const port = await freePort();
    const [listener, probe] = [await receiver(), await receiver()];
    const failing = await subscribe(gateway.slipway, {
      namespace: 'flaky',
      repository: 'flaky/app',
      title: 'Deploy hook',
      url: `http://127.0.0.1:${port}/hook`,
    });
    const watcher = await subscribe(gateway.slipway, {
      namespace: 'flaky',
      events: ['subscription_disabled'],
      url: listener.url,
    });
    await gateway.client.pushImage('flaky/app', 'v1');
    await settledDeliveries(gateway.slipway, failing.id, 1, 'dead');
    expect((await services().subscriptions.get(failing.id))!.enabled).toBe(true);
    await gateway.client.pushImage('flaky/app', 'v2');

    const notice = await waitFor('the subscription_disabled event', () => listener.received[0]);
    const event = verified<EventPayload<'subscription_disabled'>>(watcher.secret!, notice);
    const reason =
      /^2 deliveries in a row failed every attempt; last error: .*ECONNREFUSED.*; re-enable it once the endpoint works$/;
    expect(event).toMatchObject({
      kind: 'subscription_disabled',
      namespace: 'flaky',
      repository: 'flaky/app',
      subscription_id: failing.id,
      title: 'Deploy hook',
    });
    expect(event.reason).toMatch(reason);
    const disabled = await services().subscriptions.get(failing.id);
    expect(disabled).toMatchObject({ enabled: false, consecutiveFailures: 2 });
    expect(disabled!.disabledReason).toMatch(reason);

    // While disabled, pushes make no deliveries for it; the probe shows the push was dispatched.
    const probeSub = await subscribe(gateway.slipway, { namespace: 'flaky', url: probe.url });
    await gateway.client.pushImage('flaky/app', 'v3');
    await settledDeliveries(gateway.slipway, probeSub.id, 1);
    expect(await settledDeliveries(gateway.slipway, failing.id, 2)).toHaveLength(2);

    const fixed = await receiver(undefined, port);
    const enabled = await services().subscriptions.update(failing.id, { enabled: true });
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, consecutiveFailures: 0 });
    await gateway.client.pushImage('flaky/app', 'v4');
    const request = await waitFor('a delivery after re-enabling', () => fixed.received[0]);
    expect(verified(failing.secret!, request)).toMatchObject({ updated_tags: ['v4'] });
    expect(listener.received).toHaveLength(1);
  });

  it('disables a subscription at once when its endpoint answers 410 Gone, and skips what is queued for it', async () => {
    await organizationWith(gateway, 'unsubscribed/app');
    const endpoint = await receiver(() => ({ status: 410, body: 'no such hook' }));
    const subscription = await subscribe(gateway.slipway, { namespace: 'unsubscribed', url: endpoint.url });
    await gateway.client.pushImage('unsubscribed/app', 'v1');
    const [dead] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    expect(dead).toMatchObject({ status: 'dead', attempts: 1 });
    expect(dead!.attemptLog[0]).toMatchObject({ statusCode: 410, responseExcerpt: 'no such hook' });
    const disabled = await services().subscriptions.get(subscription.id);
    expect(disabled!.enabled).toBe(false);
    expect(disabled!.disabledReason).toContain(
      `answered 410 Gone at ${dead!.attemptLog[0]!.attemptedAt.toISOString()}`,
    );

    const test = await services().deliveries.sendTest(subscription.id);
    const [skipped] = await settledDeliveries(gateway.slipway, subscription.id, 1, 'skipped');
    expect(skipped).toMatchObject({ id: test.id, attempts: 0, attemptLog: [] });
    expect(endpoint.received).toHaveLength(1);
  });

  it('gives up on an endpoint that does not answer within the timeout, and retries', async () => {
    await organizationWith(gateway, 'slow/app');
    const slow = await receiver((n) => (n === 0 ? 'hang' : { status: 200, body: 'ok' }));
    const subscription = await subscribe(gateway.slipway, { namespace: 'slow', url: slow.url });
    await gateway.client.pushImage('slow/app', 'v1');
    const [delivery] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 2 });
    const [timedOut, answered] = delivery!.attemptLog;
    expect(timedOut).toMatchObject({ statusCode: null, success: false, error: 'no answer within 2 s' });
    expect(timedOut!.latencyMs).toBeGreaterThanOrEqual(1900);
    expect(answered).toMatchObject({ statusCode: 200, success: true });
  });

  it('treats a redirect as a failure and does not follow it', async () => {
    await organizationWith(gateway, 'moved/app');
    const elsewhere = await receiver();
    const mover = await receiver(() => ({ status: 307, headers: { location: elsewhere.url } }));
    const subscription = await subscribe(gateway.slipway, { namespace: 'moved', url: mover.url });
    await gateway.client.pushImage('moved/app', 'v1');
    const [dead] = await settledDeliveries(gateway.slipway, subscription.id, 1, 'dead');
    expect(dead!.attemptLog.map((a) => a.error)).toEqual(
      Array(3).fill(
        `the endpoint answered 307 Temporary Redirect (to ${elsewhere.url}): redirects are not followed`,
      ),
    );
    expect(mover.received).toHaveLength(3);
    expect(elsewhere.received).toHaveLength(0);
  });

  it('sends CloudEvents in structured mode, signed like any webhook', async () => {
    await organizationWith(gateway, 'ce/app');
    const endpoint = await receiver();
    const subscription = await subscribe(gateway.slipway, {
      namespace: 'ce',
      format: 'cloudevents',
      url: endpoint.url,
    });
    const image = await gateway.client.pushImage('ce/app', 'v1');
    const [delivery] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    const request = endpoint.received[0]!;
    expect(request.headers['content-type']).toBe('application/cloudevents+json');
    expect(request.headers['webhook-id']).toBe(delivery!.id);
    expect(verified(subscription.secret!, request)).toEqual({
      specversion: '1.0',
      id: delivery!.eventId,
      type: 'dev.slipway.repo_push',
      source: `${services().publicUrl.value}/ce/app`,
      subject: image.digest,
      time: delivery!.payload.time,
      datacontenttype: 'application/json',
      data: delivery!.payload,
    });
  });

  it('posts a Slack message without webhook signatures', async () => {
    await organizationWith(gateway, 'chat/app');
    const slack = await receiver();
    const subscription = await subscribe(gateway.slipway, {
      namespace: 'chat',
      method: 'slack',
      url: slack.url,
    });
    await gateway.client.pushImage('chat/app', 'v1');
    const [delivery] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    const request = slack.received[0]!;
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['user-agent']).toBe(`Slipway-Webhooks/${version}`);
    expect(request.headers['webhook-signature']).toBeUndefined();
    expect(JSON.parse(request.body)).toEqual(
      JSON.parse(JSON.stringify(slackMessage(delivery!.payload, { publicUrl: services().publicUrl.value }))),
    );
  });

  it('counts deliveries by method and outcome, attempt times and dead letters', async () => {
    await organizationWith(gateway, 'counted/app');
    const read = () =>
      Promise.all([
        metric(gateway.slipway.url, 'slipway_event_deliveries_total', {
          method: 'webhook',
          outcome: 'delivered',
        }),
        metric(gateway.slipway.url, 'slipway_event_dead_letters_total', { method: 'webhook' }),
        metric(gateway.slipway.url, 'slipway_event_delivery_attempt_seconds_count', {
          method: 'webhook',
          result: 'failure',
        }),
      ]);
    const before = await read();
    const ok = await subscribe(gateway.slipway, { namespace: 'counted', url: (await receiver()).url });
    const broken = await subscribe(gateway.slipway, {
      namespace: 'counted',
      url: `http://127.0.0.1:${await freePort()}/`,
    });
    await gateway.client.pushImage('counted/app', 'v1');
    await settledDeliveries(gateway.slipway, ok.id, 1);
    await settledDeliveries(gateway.slipway, broken.id, 1);
    const after = await read();
    expect(after[0] - before[0]).toBe(1);
    expect(after[1] - before[1]).toBe(1);
    expect(after[2] - before[2]).toBe(3);
  });
});
