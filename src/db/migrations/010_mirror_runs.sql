-- Repository mirroring: each sync of a mirror, and what it did with each tag.
CREATE TABLE mirror_runs (
  id bigserial PRIMARY KEY,
  mirror_id bigint NOT NULL REFERENCES mirrors (id) ON DELETE CASCADE,
  trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
  state text NOT NULL DEFAULT 'syncing' CHECK (state IN ('syncing', 'success', 'failed', 'cancelled')),
  -- Only compared digests and listed what a sync would do; wrote nothing.
  dry_run boolean NOT NULL DEFAULT false,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- The worker running it, renewing its lease while it runs. A lease left to expire means that worker
  -- stopped: the next run of the mirror marks this one failed and takes over.
  lease_owner text,
  lease_expires_at timestamptz,
  cancel_requested boolean NOT NULL DEFAULT false,
  -- Tags per outcome ({"copied": 2, "unchanged": 4, ...}), once the run has ended.
  totals jsonb,
  -- Bytes downloaded from the upstream so far.
  bytes_copied bigint NOT NULL DEFAULT 0,
  error text,
  CHECK ((state = 'syncing') = (finished_at IS NULL))
);
-- One run at a time per mirror.
CREATE UNIQUE INDEX mirror_runs_one_running ON mirror_runs (mirror_id) WHERE state = 'syncing';
CREATE INDEX mirror_runs_history ON mirror_runs (mirror_id, id DESC);

-- Written as the run reports each tag, so a run whose worker stopped still shows what it had done.
-- A tag may appear twice: skipped by the filter upstream, then deleted here.
CREATE TABLE mirror_run_tags (
  id bigserial PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES mirror_runs (id) ON DELETE CASCADE,
  tag text NOT NULL,
  outcome text NOT NULL
    CHECK (outcome IN ('copied', 'unchanged', 'skipped', 'failed', 'deleted', 'would-copy', 'would-delete')),
  digest text,
  reason text,
  bytes bigint
);
CREATE INDEX mirror_run_tags_by_run ON mirror_run_tags (run_id, id);
