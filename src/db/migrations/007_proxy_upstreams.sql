-- Pull-through upstreams managed through the API (those of the config file are not stored here).
CREATE TABLE proxy_upstreams (
  name text PRIMARY KEY,
  url text NOT NULL,
  hosts text[] NOT NULL DEFAULT '{}',
  username text,
  -- Sealed with the installation's sealing key; never returned by the API.
  password_sealed text,
  tls_verify boolean NOT NULL DEFAULT true,
  freshness_seconds double precision NOT NULL,
  stale_if_error boolean NOT NULL DEFAULT true,
  negative_ttl_seconds double precision NOT NULL,
  max_connections integer NOT NULL,
  timeout_seconds double precision NOT NULL,
  breaker_failures integer NOT NULL,
  breaker_cooldown_seconds double precision NOT NULL,
  -- anonymous | users | org:<organization>
  pull text NOT NULL DEFAULT 'users',
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Bumped by every change, so replicas notice changes (deletions included) with one cheap read.
CREATE TABLE proxy_upstreams_revision (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  revision bigint NOT NULL
);
INSERT INTO proxy_upstreams_revision (revision) VALUES (0);
