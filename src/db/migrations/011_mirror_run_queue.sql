-- A sync asked for through the API waits as a queued run until a worker starts it. A queued run counts
-- as under way: one mirror has at most one run queued or syncing. Its lease is how long it may wait.
ALTER TABLE mirror_runs DROP CONSTRAINT mirror_runs_state_check;
ALTER TABLE mirror_runs ADD CONSTRAINT mirror_runs_state_check
  CHECK (state IN ('queued', 'syncing', 'success', 'failed', 'cancelled'));
ALTER TABLE mirror_runs DROP CONSTRAINT mirror_runs_check;
ALTER TABLE mirror_runs ADD CONSTRAINT mirror_runs_finished_check
  CHECK ((state IN ('queued', 'syncing')) = (finished_at IS NULL));
DROP INDEX mirror_runs_one_running;
CREATE UNIQUE INDEX mirror_runs_one_under_way ON mirror_runs (mirror_id) WHERE state IN ('queued', 'syncing');
