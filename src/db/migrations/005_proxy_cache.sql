-- Pull-through cache: when each tag of a proxied repository was last checked against its upstream,
-- so freshness survives restarts and is shared by replicas.
CREATE TABLE proxy_tags (
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  tag text NOT NULL,
  digest text NOT NULL,
  -- Fetched or revalidated upstream.
  checked_at timestamptz NOT NULL DEFAULT now(),
  last_pulled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, tag)
);
