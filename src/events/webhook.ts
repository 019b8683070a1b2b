import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EventPayload } from './catalog.ts';
import type { Subscription } from './model.ts';
import { slackMessage } from './slack.ts';

/** What goes out for one attempt: a JSON body and its headers. */
export interface OutgoingRequest {
  headers: Record<string, string>;
  body: string;
}

export interface RequestContext {
  /** The delivery id: `webhook-id`, the same on every attempt and replay. */
  deliveryId: string;
  /** The gateway's public URL, for CloudEvents' `source` and Slack's links. */
  publicUrl: string;
  /** When this attempt is made: `webhook-timestamp`. */
  now: Date;
}

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export const userAgent = `Slipway-Webhooks/${packageVersion}`;

/** The request for a delivery: a Slack message, or the event signed as Standard Webhooks asks. */
export function deliveryRequest(
  subscription: Subscription,
  payload: EventPayload,
  context: RequestContext,
): OutgoingRequest {
  if (subscription.method === 'slack') {
    return {
      headers: { 'content-type': 'application/json', 'user-agent': userAgent },
      body: JSON.stringify(slackMessage(payload, { publicUrl: context.publicUrl })),
    };
  }
  const cloudEvents = subscription.format === 'cloudevents';
  const body = JSON.stringify(cloudEvents ? cloudEvent(payload, context.publicUrl) : payload);
  const timestamp = Math.floor(context.now.getTime() / 1000);
  return {
    headers: {
      'content-type': cloudEvents ? 'application/cloudevents+json' : 'application/json',
      'user-agent': userAgent,
      'x-slipway-event': payload.kind,
      'x-slipway-event-id': payload.id,
      'webhook-id': context.deliveryId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': sign(subscription.secret!, context.deliveryId, timestamp, body),
    },
    body,
  };
}

/** Standard Webhooks: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`, keyed by the secret's bytes. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** A CloudEvents 1.0 event in structured mode, with the payload as its data. */
export function cloudEvent(payload: EventPayload, publicUrl: string) {
  return {
    specversion: '1.0',
    id: payload.id,
    type: `dev.slipway.${payload.kind}`,
    source: `${publicUrl.replace(/\/+$/, '')}/${payload.repository ?? payload.namespace}`,
    subject: subjectOf(payload),
    time: payload.time,
    datacontenttype: 'application/json',
    data: payload,
  };
}

/** What the event is about within its source: a manifest, a build, a mirror or a subscription. */
function subjectOf(payload: EventPayload): string {
  switch (payload.kind) {
    case 'repo_push':
    case 'repo_tag_deleted':
      return payload.digest;
    case 'repo_mirror_sync_started':
    case 'repo_mirror_sync_success':
    case 'repo_mirror_sync_failed':
      return `mirrors/${payload.mirror_id}`;
    case 'subscription_disabled':
      return `subscriptions/${payload.subscription_id}`;
    default:
      return `builds/${payload.build_id}`;
  }
}
