-- Repository mirroring: what each mirrored repository copies from which upstream, and when. The runs
-- themselves are kept elsewhere.
CREATE TABLE mirrors (
  id bigserial PRIMARY KEY,
  -- The local repository the mirror fills; read-only to everyone but the mirror's robot.
  repository_id bigint NOT NULL UNIQUE REFERENCES repositories (id) ON DELETE CASCADE,
  -- The registry's origin (https://registry-1.docker.io) and the repository there (library/nginx).
  upstream_url text NOT NULL,
  upstream_repository text NOT NULL,
  username text,
  -- Sealed with the installation's sealing key; never returned by the API.
  password_sealed text,
  tls_verify boolean NOT NULL DEFAULT true,
  -- A tag filter (include, exclude, regex, semver, includePrerelease, newest).
  filter jsonb NOT NULL DEFAULT '{}',
  -- "all", or a list of platforms such as ["linux/amd64", "linux/arm64/v8"].
  platforms jsonb NOT NULL DEFAULT '"all"',
  -- Every so many seconds, or at the times of a cron expression (UTC): one of the two.
  interval_seconds double precision CHECK (interval_seconds > 0),
  cron text,
  start_at timestamptz,
  enabled boolean NOT NULL DEFAULT true,
  -- Delete local tags no longer selected upstream, at most max_deletions in one run.
  delete_missing boolean NOT NULL DEFAULT false,
  max_deletions integer NOT NULL DEFAULT 20 CHECK (max_deletions >= 0),
  -- The robot of the repository's namespace the mirror writes as; null once that robot is deleted.
  robot_id bigint REFERENCES accounts (id) ON DELETE SET NULL,
  concurrency integer NOT NULL DEFAULT 4 CHECK (concurrency > 0),
  -- Bytes per second; null: no limit.
  bandwidth_limit bigint CHECK (bandwidth_limit > 0),
  state text NOT NULL DEFAULT 'never_run'
    CHECK (state IN ('never_run', 'syncing', 'success', 'failed', 'cancelled')),
  last_run_at timestamptz,
  next_run_at timestamptz,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((interval_seconds IS NULL) <> (cron IS NULL))
);
CREATE INDEX mirrors_due ON mirrors (next_run_at) WHERE enabled;
CREATE INDEX mirrors_by_robot ON mirrors (robot_id) WHERE robot_id IS NOT NULL;

-- Bumped by every change, so each replica notices which repositories are mirrors with one cheap read.
CREATE TABLE mirrors_revision (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  revision bigint NOT NULL
);
INSERT INTO mirrors_revision (revision) VALUES (0);

-- Deletions that cascade (a repository deleted) and robots deleted from under a mirror move it too.
CREATE FUNCTION bump_mirrors_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE mirrors_revision SET revision = revision + 1;
  RETURN NULL;
END;
$$;
CREATE TRIGGER mirrors_changed_elsewhere AFTER DELETE OR UPDATE OF robot_id ON mirrors
  FOR EACH ROW EXECUTE FUNCTION bump_mirrors_revision();
