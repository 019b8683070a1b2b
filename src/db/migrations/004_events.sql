-- Events and their delivery to webhooks and Slack.

-- One row for the whole installation: its id keeps the queues of installations that share a Redis apart.
CREATE TABLE installation (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation (id) VALUES (gen_random_uuid());

-- The outbox: written in the transaction of the change the event tells of. A dispatcher fans each
-- undispatched event out to the subscriptions it matches, then stamps dispatched_at.
CREATE TABLE events (
  seq bigserial PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  kind text NOT NULL,
  namespace text NOT NULL,
  -- The full repository name; null for events of a whole namespace.
  repository text,
  payload jsonb NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  dispatched_at timestamptz
);
CREATE INDEX events_undispatched ON events (seq) WHERE dispatched_at IS NULL;

-- Who hears of what: a repository's events, or every repository's in a namespace (repository_id null).
CREATE TABLE subscriptions (
  id uuid PRIMARY KEY,
  namespace_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  repository_id bigint REFERENCES repositories (id) ON DELETE CASCADE,
  title text NOT NULL,
  events text[] NOT NULL,
  -- A tag glob for pushes and tag deletions, a ref regex for builds.
  filter text,
  method text NOT NULL CHECK (method IN ('webhook', 'slack')),
  -- The destination URL and, for webhooks, the whsec_ secret: sealed, never stored in the clear.
  sealed_url text NOT NULL,
  sealed_secret text,
  format text NOT NULL DEFAULT 'standard' CHECK (format IN ('standard', 'cloudevents')),
  enabled boolean NOT NULL DEFAULT true,
  disabled_reason text,
  consecutive_failures integer NOT NULL DEFAULT 0,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_by_namespace ON subscriptions (namespace_id);
CREATE INDEX subscriptions_by_repository ON subscriptions (repository_id) WHERE repository_id IS NOT NULL;

-- One event to one subscription. Its id is the webhook-id receivers deduplicate on: every attempt and
-- every replay of the delivery carries the same one.
CREATE TABLE deliveries (
  id uuid PRIMARY KEY,
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  event_id uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  -- pending: queued or waiting for a retry; delivered; dead: every attempt failed (the dead letters);
  -- skipped: the subscription was disabled before it went out.
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead', 'skipped')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  -- A replay starts a new generation: its job has a new id, and a job of an older generation that
  -- still runs (a retry waiting when the replay came) sees it is stale and stops.
  generation integer NOT NULL DEFAULT 0,
  -- When it was last handed to the queue: a pending delivery whose job is gone (Redis lost it, or the
  -- process died between commit and enqueue) is found by the sweeper once this is old enough.
  queued_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  UNIQUE (subscription_id, event_id)
);
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, created_at DESC);
CREATE INDEX deliveries_pending ON deliveries (queued_at, id) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
  id bigserial PRIMARY KEY,
  delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  attempted_at timestamptz NOT NULL DEFAULT now(),
  -- The HTTP status, or null when no response came (refused, timed out, blocked destination).
  status_code integer,
  latency_ms integer NOT NULL,
  success boolean NOT NULL,
  error text,
  response_excerpt text
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
