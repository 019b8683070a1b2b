-- A build's archived log is held for as long as the build is recorded: the hold names its build and
-- goes with it, whether the build is deleted by retention or with its repository, and the next
-- garbage collection then removes the log.
ALTER TABLE blob_holds ADD COLUMN build_id uuid REFERENCES builds (id) ON DELETE CASCADE;
CREATE INDEX blob_holds_by_build ON blob_holds (build_id) WHERE build_id IS NOT NULL;

-- Holds from before: build-log:<build id>, joined as text so that a malformed holder matches nothing.
UPDATE blob_holds h SET build_id = b.id
  FROM builds b
 WHERE h.holder LIKE 'build-log:%' AND h.holder = 'build-log:' || b.id::text;
-- Those whose build is gone already (its repository was deleted) held their log for ever.
DELETE FROM blob_holds WHERE holder LIKE 'build-log:%' AND build_id IS NULL;
