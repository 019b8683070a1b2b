-- Build tokens: the credential a builder pushes with. Each stands for one build, pulls and pushes
-- one repository, and expires with the build. A build is no account: it owns nothing and is granted
-- nothing, so a build token reaches nothing but its repository, whatever the permissions say.
-- Tokens are slw_<selector>_<verifier> as in access_tokens; only the SHA-256 of the verifier is kept.
CREATE TABLE build_tokens (
  id bigserial PRIMARY KEY,
  build_id text NOT NULL UNIQUE,
  repository text NOT NULL,
  selector text NOT NULL UNIQUE,
  verifier_hash bytea NOT NULL,
  -- Who the build runs for (a trigger's creator), when the build service says so.
  issued_by bigint REFERENCES accounts (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  last_used_at timestamptz,
  CHECK (expires_at > created_at)
);
CREATE INDEX build_tokens_by_expiry ON build_tokens (expires_at);
