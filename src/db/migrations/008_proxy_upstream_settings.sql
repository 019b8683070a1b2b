-- Settings config-declared upstreams had and API-managed ones lacked: a storage budget with pinned
-- tags, and whether a cached tag deleted upstream is still served.
ALTER TABLE proxy_upstreams
  -- Bytes; null: no limit.
  ADD COLUMN storage_budget_bytes bigint CHECK (storage_budget_bytes >= 0),
  -- Tag globs, or repository:tag globs.
  ADD COLUMN pinned text[] NOT NULL DEFAULT '{}',
  ADD COLUMN stale_if_deleted boolean NOT NULL DEFAULT false;
