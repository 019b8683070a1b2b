-- Pull-through cache: which gateway replica is fetching a blob from its upstream, so that only one
-- does at a time. A lease the holder stops renewing (it crashed) expires and another replica takes over.
CREATE TABLE proxy_blob_fills (
  digest text PRIMARY KEY,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL
);
