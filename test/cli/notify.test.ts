import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryResource, SubscriptionResource } from '../../src/cli/resources.ts';
import { waitFor } from '../helpers/tools.ts';
import { recordFields, tableRows, useCliGateway } from './cli-user.ts';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

describe('slipway notify', () => {
  const gateway = useCliGateway();
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
  });
  afterAll(async () => {
    await receiver?.close();
  });

  const createWebhook = (...more: string[]) =>
    gateway.root.json<SubscriptionResource>([
      'notify',
      'create',
      '--repo',
      'acme/app',
      '--event',
      'repo_push',
      '--webhook',
      receiver.url,
      ...more,
    ]);

  it('create --json prints the subscription with its whsec_ secret, and list shows it without', async () => {
    const created = await createWebhook(
      '--event',
      'repo_tag_deleted',
      '--filter',
      'v*',
      '--title',
      'CI hook',
    );
    expect(created).toMatchObject({
      repository: 'acme/app',
      events: ['repo_push', 'repo_tag_deleted'],
      filter: 'v*',
      title: 'CI hook',
      method: 'webhook',
      url: receiver.url,
      enabled: true,
    });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const listed = await gateway.root.ok(['notify', 'list', '--repo', 'acme/app']);
    expect(listed).not.toContain(created.secret);
    expect(tableRows(listed)).toContainEqual({
      id: created.id,
      scope: 'acme/app',
      method: 'webhook',
      events: 'repo_push,repo_tag_deleted',
      url: receiver.url,
      enabled: 'yes',
    });
    const json = await gateway.root.json<SubscriptionResource[]>(['notify', 'list', '--org', 'acme']);
    expect(json.map((subscription) => subscription.id)).toContain(created.id);
    expect(recordFields(await gateway.root.ok(['notify', 'show', created.id]))).toMatchObject({
      id: created.id,
      title: 'CI hook',
      filter: 'v*',
      format: 'standard',
    });
  });

  it('create shows a webhook secret once with a warning, and a Slack URL only by its host', async () => {
    const webhook = await gateway.root.run([
      'notify',
      'create',
      '--org',
      'acme',
      '--event',
      'build_failure',
      '--webhook',
      receiver.url,
      '--cloudevents',
    ]);
    expect(webhook.code).toBe(0);
    expect(webhook.stdout).toMatch(/^created subscription [0-9a-f-]{36}$/m);
    expect(recordFields(webhook.stdout)).toMatchObject({
      scope: 'acme (all repositories)',
      format: 'cloudevents',
    });
    expect(webhook.stdout).toMatch(/^ {4}whsec_\S+$/m);
    expect(webhook.stderr).toBe('Store this secret now: it will not be shown again.\n');

    const slack = await gateway.root.run([
      'notify',
      'create',
      '--org',
      'acme',
      '--event',
      'repo_push',
      '--slack',
      'https://hooks.slack.com/services/T0/B0/abcdefabcdefabcdef',
    ]);
    expect(slack.code).toBe(0);
    expect(recordFields(slack.stdout)).toMatchObject({ method: 'slack', url: 'https://hooks.slack.com/…' });
    expect(slack.stdout).not.toContain('abcdef');
    expect(slack.stdout).not.toContain('whsec_');
    expect(slack.stderr).toBe('');
  });

  it('refuses incomplete commands before asking, and says what the gateway refused', async () => {
    const user = gateway.root;
    const noEvent = await user.run(['notify', 'create', '--repo', 'acme/app', '--webhook', receiver.url]);
    expect(noEvent).toMatchObject({
      code: 2,
      stderr: 'slipway: name the events to send: --event KIND (repeat for more)\n',
    });
    const noScope = await user.run(['notify', 'list']);
    expect(noScope).toMatchObject({
      code: 2,
      stderr: 'slipway: say whose events: --repo NAMESPACE/NAME or --org NAMESPACE\n',
    });
    const noDestination = await user.run(['notify', 'create', '--org', 'acme', '--event', 'repo_push']);
    expect(noDestination.stderr).toBe('slipway: say where to send them: --webhook URL or --slack URL\n');
    const unknown = await user.run([
      'notify',
      'create',
      '--org',
      'acme',
      '--event',
      'repo_pushed',
      '--webhook',
      receiver.url,
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^slipway: body\/events\/0: unknown event kind "repo_pushed"; known kinds: /,
    );

    const stranger = await gateway.signedUpUser('mallory');
    const hidden = await stranger.run(['notify', 'list', '--repo', 'acme/app']);
    expect(hidden).toMatchObject({
      code: 2,
      stderr: 'slipway: repository acme/app does not exist or you cannot see it\n',
    });
  });

  it('disable, enable and delete change the subscription', async () => {
    const { id } = await createWebhook();
    expect(await gateway.root.ok(['notify', 'disable', id])).toBe(`subscription ${id} is disabled\n`);
    expect(recordFields(await gateway.root.ok(['notify', 'show', id])).enabled).toBe('no');
    expect(await gateway.root.ok(['notify', 'enable', id])).toBe(`subscription ${id} is enabled\n`);
    expect(await gateway.root.ok(['notify', 'delete', id])).toBe(`deleted subscription ${id}\n`);
    const gone = await gateway.root.run(['notify', 'show', id]);
    expect(gone).toMatchObject({
      code: 2,
      stderr: `slipway: subscription ${id} does not exist or you cannot see it\n`,
    });
  });

  it('test sends a sample to the receiver, deliveries lists it, and replay sends it again', async () => {
    const { id } = await createWebhook();
    const before = receiver.received.length;
    const sent = await gateway.root.run(['notify', 'test', id]);
    expect(sent.code).toBe(0);
    const deliveryId = /^queued a test repo_push event as delivery (\S+)$/m.exec(sent.stdout)?.[1];
    expect(deliveryId).toBeDefined();
    const received = await waitFor('the test event', () => receiver.received[before]);
    expect(received.headers['webhook-id']).toBe(deliveryId);
    expect(JSON.parse(received.body)).toMatchObject({ kind: 'repo_push', test: true });

    const row = await waitFor('the delivery to be logged', async () => {
      const rows = tableRows(await gateway.root.ok(['notify', 'deliveries', id]));
      return rows.find((r) => r.delivery === deliveryId && r.status === 'delivered');
    });
    expect(row).toMatchObject({ event: 'repo_push', attempts: '1', 'last code': '200' });
    const [attempt] = tableRows(
      (await gateway.root.ok(['notify', 'delivery', id, deliveryId!])).split('\n\n')[1]!,
    );
    expect(attempt).toMatchObject({ code: '200', ok: 'yes', response: 'ok' });
    const delivered = await gateway.root.json<DeliveryResource[]>([
      'notify',
      'deliveries',
      id,
      '--status',
      'delivered',
    ]);
    expect(delivered.map((delivery) => delivery.id)).toEqual([deliveryId]);

    expect(await gateway.root.ok(['notify', 'replay', id, deliveryId!])).toBe(
      `queued delivery ${deliveryId} again\n`,
    );
    const again = await waitFor('the replay', () => receiver.received[before + 1]);
    expect(again.headers['webhook-id']).toBe(deliveryId);
  });
});
