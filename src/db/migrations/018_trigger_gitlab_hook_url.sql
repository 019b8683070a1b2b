-- GitLab triggers Slipway set up itself: the URL their project webhook was registered with, so that a
-- change of the gateway's public URL shows (and is synced: the hook updated to the new URL); and why the
-- last sync failed, shown on the trigger until a sync succeeds. Null hook URL: set up before this was
-- recorded, so unknown.
ALTER TABLE build_triggers
  ADD COLUMN gitlab_hook_url text,
  ADD COLUMN gitlab_sync_problem text;
