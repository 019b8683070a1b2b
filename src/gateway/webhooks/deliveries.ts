import type { IncomingHttpHeaders } from 'node:http';
import { decodeGitHubBody, parseGitHubEvent, verifyGitHubDelivery } from '../../triggers/github.ts';
import { parseGitLabEvent, verifyGitLabToken } from '../../triggers/gitlab.ts';
import { parseJsonBody } from '../../triggers/body.ts';
import { parseCustomPayload, verifyCustomSignature } from '../../triggers/custom-git.ts';
import type { PushEvent } from '../../triggers/push-event.ts';
import type { TriggerProvider } from '../../triggers/trigger-settings.ts';

/** What a verified delivery asks for, whichever provider sent it. */
export type Delivery =
  | { kind: 'ping'; zen?: string | undefined }
  | { kind: 'push'; event: PushEvent }
  | { kind: 'ignored'; reason: string };

/**
 * Authenticates a delivery against the trigger's secret, then reads it. Refusals are thrown as
 * WebhookAuthError (401) or WebhookPayloadError (400); nothing is read before the secret checks out.
 */
export type DeliveryReader = (
  secret: string,
  body: Buffer,
  headers: IncomingHttpHeaders,
) => Promise<Delivery>;

const single = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value.at(-1) : value;

const readGitHub: DeliveryReader = async (secret, body, headers) => {
  await verifyGitHubDelivery(secret, body, headers['x-hub-signature-256']);
  const delivery = parseGitHubEvent(
    single(headers['x-github-event']),
    decodeGitHubBody(body, headers['content-type']),
  );
  return delivery.kind === 'ping' ? { kind: 'ping', zen: delivery.zen } : delivery;
};

const readGitLab: DeliveryReader = (secret, body, headers) => {
  verifyGitLabToken(secret, headers['x-gitlab-token']);
  return Promise.resolve(parseGitLabEvent(single(headers['x-gitlab-event']), parseJsonBody(body)));
};

const readCustom: DeliveryReader = async (secret, body, headers) => {
  await verifyCustomSignature(secret, body, headers['x-slipway-signature-256']);
  return parseCustomPayload(parseJsonBody(body));
};

/** Each provider's URL path under /webhooks and how its deliveries are read. */
export const webhookProviders: ReadonlyArray<{
  path: string;
  provider: TriggerProvider;
  read: DeliveryReader;
}> = [
  { path: 'github', provider: 'github', read: readGitHub },
  { path: 'gitlab', provider: 'gitlab', read: readGitLab },
  { path: 'git', provider: 'custom', read: readCustom },
];

/** Where a trigger's provider delivers: `/webhooks/github/<id>`, `/webhooks/gitlab/<id>`, `/webhooks/git/<id>`. */
export function webhookPath(provider: TriggerProvider, triggerId: string): string {
  const { path } = webhookProviders.find((entry) => entry.provider === provider)!;
  return `/webhooks/${path}/${triggerId}`;
}
