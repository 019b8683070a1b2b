-- Git-triggered builds: the triggers that turn a push into a build, and the builds themselves.
CREATE TABLE build_triggers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- The repository the builds push to.
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  provider text NOT NULL CHECK (provider IN ('github', 'gitlab', 'custom')),
  clone_url text NOT NULL,
  -- GitHub and custom git sign deliveries with it (HMAC-SHA256); GitLab sends it as X-Gitlab-Token.
  webhook_secret_sealed text NOT NULL,
  -- Credentials to clone with: a token over HTTPS (with an optional user name), or an SSH deploy key.
  clone_username text,
  clone_token_sealed text,
  deploy_key_sealed text,
  -- A regular expression matched against heads/<branch> or tags/<tag>; null builds every push.
  ref_filter text,
  dockerfile text NOT NULL DEFAULT 'Dockerfile',
  context text NOT NULL DEFAULT '.',
  build_args jsonb NOT NULL DEFAULT '{}',
  tag_templates jsonb NOT NULL DEFAULT '[]',
  latest_on_default_branch boolean NOT NULL DEFAULT true,
  enabled boolean NOT NULL DEFAULT true,
  -- Why it was disabled (by someone, or after failing too often in a row).
  disabled_reason text,
  failures_in_a_row integer NOT NULL DEFAULT 0,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (clone_token_sealed IS NULL OR deploy_key_sealed IS NULL)
);
CREATE INDEX build_triggers_by_repository ON build_triggers (repository_id);

CREATE TABLE builds (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  -- Null for a manual build without a trigger, or once its trigger was deleted.
  trigger_id uuid REFERENCES build_triggers (id) ON DELETE SET NULL,
  trigger_kind text NOT NULL CHECK (trigger_kind IN ('github', 'gitlab', 'git', 'manual')),
  phase text NOT NULL DEFAULT 'waiting'
    CHECK (phase IN ('waiting', 'cloning', 'building', 'pushing', 'complete', 'error', 'cancelled',
                     'timeout', 'internal_error')),
  clone_url text NOT NULL,
  ref text,
  commit_sha text,
  -- The push as the git provider told of it: author, message, compare URL (trigger_metadata of events).
  push jsonb,
  dockerfile text NOT NULL,
  context text NOT NULL,
  build_args jsonb NOT NULL DEFAULT '{}',
  tags jsonb NOT NULL,
  requested_by text,
  cancel_requested boolean NOT NULL DEFAULT false,
  -- The builder running it, and until when its claim holds without a heartbeat.
  builder text,
  claim_expires_at timestamptz,
  digest text,
  image_bytes bigint,
  -- Milliseconds per phase: {"cloning": 820, "building": 41000, "pushing": 3100}.
  phase_ms jsonb NOT NULL DEFAULT '{}',
  error text,
  -- The gzip of the log in blob storage, once the build ended.
  log_digest text,
  queued_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  phase_changed_at timestamptz NOT NULL DEFAULT now()
);
-- The same commit is not built twice at once for one trigger.
CREATE UNIQUE INDEX builds_one_per_commit ON builds (trigger_id, commit_sha)
  WHERE phase IN ('waiting', 'cloning', 'building', 'pushing');
CREATE INDEX builds_by_repository ON builds (repository_id, queued_at DESC);
CREATE INDEX builds_under_way ON builds (phase) WHERE phase IN ('waiting', 'cloning', 'building', 'pushing');

-- Blobs kept for something other than an image, such as an archived build log: they have no row in
-- blobs, and garbage collection leaves them alone while a hold names them.
CREATE TABLE blob_holds (
  digest text NOT NULL,
  -- Who holds it, e.g. build-log:<build id>.
  holder text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (digest, holder)
);
