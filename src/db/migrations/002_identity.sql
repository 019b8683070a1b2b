-- Identity and access: accounts, teams, repository permissions, tokens and the audit log.

-- Users, organizations and robot accounts share one name space, as in Quay: a user's or an
-- organization's name is a namespace of repositories; a robot is named <namespace>+<short name>.
CREATE TABLE accounts (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  kind text NOT NULL CHECK (kind IN ('user', 'organization', 'robot')),
  email text,
  password_hash text,
  superuser boolean NOT NULL DEFAULT false,
  -- The namespace a robot belongs to.
  owner_id bigint REFERENCES accounts (id) ON DELETE CASCADE,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'robot') = (owner_id IS NOT NULL))
);
CREATE INDEX accounts_by_owner ON accounts (owner_id) WHERE owner_id IS NOT NULL;

-- Teams of an organization. admin: everything in the organization; creator: creates repositories
-- (and administers those it creates); member: what the team is granted on repositories.
CREATE TABLE teams (
  id bigserial PRIMARY KEY,
  organization_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('member', 'creator', 'admin')),
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (organization_id, name)
);

CREATE TABLE team_members (
  team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, account_id)
);
CREATE INDEX team_members_by_account ON team_members (account_id);

ALTER TABLE repositories
  ADD COLUMN visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public'));

-- A role on one repository, granted to an account (user or robot) or to a team.
CREATE TABLE repository_permissions (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  account_id bigint REFERENCES accounts (id) ON DELETE CASCADE,
  team_id bigint REFERENCES teams (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
  CHECK ((account_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX repository_permissions_account ON repository_permissions (repository_id, account_id)
  WHERE account_id IS NOT NULL;
CREATE UNIQUE INDEX repository_permissions_team ON repository_permissions (repository_id, team_id)
  WHERE team_id IS NOT NULL;
CREATE INDEX repository_permissions_by_account ON repository_permissions (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX repository_permissions_by_team ON repository_permissions (team_id) WHERE team_id IS NOT NULL;

-- Secrets that stand for an account: personal access tokens of users, and each robot's token.
-- A token is slw_<selector>_<verifier>; only the SHA-256 of the verifier is kept.
CREATE TABLE access_tokens (
  id bigserial PRIMARY KEY,
  selector text NOT NULL UNIQUE,
  verifier_hash bytea NOT NULL,
  account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('personal', 'robot')),
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_used_at timestamptz
);
CREATE INDEX access_tokens_by_account ON access_tokens (account_id);

-- Who did what, from where, to what.
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL,
  actor text,
  actor_kind text,
  ip text,
  namespace text,
  repository text,
  target text,
  success boolean NOT NULL DEFAULT true,
  metadata jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_time ON audit_log (occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_repository ON audit_log (repository, id DESC) WHERE repository IS NOT NULL;
CREATE INDEX audit_log_by_actor ON audit_log (actor, id DESC) WHERE actor IS NOT NULL;
CREATE INDEX audit_log_by_namespace ON audit_log (namespace, id DESC) WHERE namespace IS NOT NULL;
