import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPayload } from '../../src/events/catalog.ts';
import type { Subscription } from '../../src/events/model.ts';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { credsOf, IdentityFixtures, type Login } from '../helpers/identity-fixtures.ts';
import { buildSampleImages, type SampleImages } from '../helpers/sample-images.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { waitFor } from '../helpers/tools.ts';
import {
  startReceiver,
  verified,
  type ReceivedRequest,
  type WebhookReceiver,
} from '../helpers/webhook-receiver.ts';

/**
 * The whole path with real clients: skopeo pushes as a robot, the outbox and the delivery worker
 * turn each tag push into one signed webhook per matching subscription and one Slack message.
 */
describe('events from pushes made with skopeo', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let slipway: TestSlipway;
  let robot: Login;
  let hooks: WebhookReceiver;
  let releases: WebhookReceiver;
  let slack: WebhookReceiver;
  let repositoryHook: Subscription;
  let releaseHook: Subscription;
  let slackSubscription: Subscription;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-events-');
    [images, slipway, hooks, releases, slack] = await Promise.all([
      buildSampleImages(workspace, 'events'),
      startSecuredSlipway(),
      startReceiver(),
      startReceiver(),
      startReceiver(),
    ]);
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
    robot = await fixtures.robot('acme', 'ci');
    await fixtures.grant('acme/app', { user: robot.username }, 'write');
    const subscriptions = slipway.services.subscriptions;
    repositoryHook = await subscriptions.create({
      namespace: 'acme',
      repository: 'acme/app',
      events: ['repo_push'],
      method: 'webhook',
      url: hooks.url,
      createdBy: 'root',
    });
    releaseHook = await subscriptions.create({
      namespace: 'acme',
      events: ['repo_push'],
      filter: 'release-*',
      method: 'webhook',
      url: releases.url,
      createdBy: 'root',
    });
    slackSubscription = await subscriptions.create({
      namespace: 'acme',
      events: ['repo_push'],
      method: 'slack',
      url: slack.url,
      createdBy: 'root',
    });
  });
  afterAll(async () => {
    await slipway?.stop();
    await Promise.all([hooks?.close(), releases?.close(), slack?.close(), workspace?.remove()]);
  });

  const push = (source: string, destination: string, ...options: string[]) =>
    workspace.skopeo([
      'copy',
      ...options,
      '--dest-tls-verify=false',
      '--dest-creds',
      credsOf(robot),
      source,
      `docker://${slipway.host}/${destination}`,
    ]);

  /** Waits until the subscription has `count` delivered deliveries, then a moment more for strays. */
  async function delivered(subscription: Subscription, count: number): Promise<void> {
    await waitFor(`${count} deliveries to ${subscription.title}`, async () => {
      const page = await slipway.services.deliveries.listDeliveries(subscription.id, { limit: 50 });
      return page.items.filter((d) => d.status === 'delivered').length >= count || undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }

  const verifiedFor = (subscription: Subscription, request: ReceivedRequest): EventPayload =>
    verified<EventPayload>(subscription.secret!, request);

  it('delivers one signed repo_push per subscription for a single-image push, and a Slack message', async () => {
    await push(images.single.ref, 'acme/app:1');
    await delivered(repositoryHook, 1);
    await delivered(slackSubscription, 1);

    expect(hooks.received).toHaveLength(1);
    const event = verifiedFor(repositoryHook, hooks.received[0]!);
    expect(event).toMatchObject({
      kind: 'repo_push',
      repository: 'acme/app',
      namespace: 'acme',
      docker_url: `${slipway.host}/acme/app`,
      updated_tags: ['1'],
      digest: images.single.digest,
      pusher: robot.username,
    });
    expect(hooks.received[0]!.headers['webhook-id']).toMatch(/^[0-9a-f-]{36}$/);

    expect(slack.received).toHaveLength(1);
    const message = JSON.parse(slack.received[0]!.body) as {
      text: string;
      blocks?: unknown[];
      attachments?: unknown[];
    };
    expect(message.text).toContain('acme/app');
    expect(JSON.stringify(message)).toContain(images.single.digest.slice(7, 19));

    // The release-* filter keeps the organization-wide hook quiet for tag 1.
    expect(releases.received).toEqual([]);
    expect((await slipway.services.deliveries.listDeliveries(releaseHook.id, { limit: 10 })).items).toEqual(
      [],
    );
  });

  it('delivers one repo_push for a multi-arch push, for the index tag only, to every matching subscription', async () => {
    await push(images.multi.ref, 'acme/app:release-1', '--all');
    await delivered(repositoryHook, 2);
    await delivered(releaseHook, 1);

    expect(hooks.received).toHaveLength(2);
    expect(verifiedFor(repositoryHook, hooks.received[1]!)).toMatchObject({
      updated_tags: ['release-1'],
      digest: images.multi.digest,
    });
    expect(releases.received).toHaveLength(1);
    const release = verifiedFor(releaseHook, releases.received[0]!);
    expect(release).toMatchObject({ updated_tags: ['release-1'], digest: images.multi.digest });
    expect(slack.received).toHaveLength(2);
  });
});
