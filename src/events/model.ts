import type { EventKind, EventPayload } from './catalog.ts';

export type DeliveryMethod = 'webhook' | 'slack';

/** `standard`: the event as JSON with Standard Webhooks headers; `cloudevents`: a structured CloudEvent. */
export type PayloadFormat = 'standard' | 'cloudevents';

/** A subscription with its secrets opened: what the delivery worker and the API owner see. */
export interface Subscription {
  id: string;
  /** The organization or user whose repositories it hears of. */
  namespace: string;
  /** The full repository name, or null for every repository of the namespace. */
  repository: string | null;
  title: string;
  events: EventKind[];
  /** A tag glob (pushes, tag deletions) or a ref regex (builds); null matches everything. */
  filter: string | null;
  method: DeliveryMethod;
  url: string;
  /** `whsec_…` for webhooks; null for Slack. */
  secret: string | null;
  format: PayloadFormat;
  enabled: boolean;
  disabledReason: string | null;
  consecutiveFailures: number;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * pending: queued or waiting for a retry; delivered; dead: every attempt failed (a dead letter,
 * kept for replay); skipped: its subscription was disabled or deleted before it went out.
 */
export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'skipped';

export interface DeliveryAttempt {
  attemptedAt: Date;
  /** The HTTP status, or null when no response came. */
  statusCode: number | null;
  latencyMs: number;
  success: boolean;
  error: string | null;
  /** The first bytes of the response body. */
  responseExcerpt: string | null;
}

export interface Delivery {
  /** Also the `webhook-id` header: the same on every attempt and replay. */
  id: string;
  subscriptionId: string;
  eventId: string;
  eventKind: EventKind;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  createdAt: Date;
  finishedAt: Date | null;
  attemptLog: DeliveryAttempt[];
  payload: EventPayload;
}

export interface DeliveryPage {
  /** Newest first. */
  items: Delivery[];
  /** Pass as `before` for the next page. */
  next?: string;
}

/** What the API asks of delivery: test events, the delivery log, and replays. */
export interface DeliveryControl {
  /** Queues a sample of the subscription's first event kind (marked `test: true`) to it alone. */
  sendTest(subscriptionId: string): Promise<Delivery>;
  listDeliveries(
    subscriptionId: string,
    options: { limit: number; before?: string; status?: DeliveryStatus },
  ): Promise<DeliveryPage>;
  getDelivery(deliveryId: string): Promise<Delivery | null>;
  /** Sends a delivery again, with the same id and payload, whatever its status. */
  replay(deliveryId: string): Promise<Delivery>;
}
