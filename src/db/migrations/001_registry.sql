-- Registry metadata. Blob bytes live in blob storage; everything else is here.

CREATE TABLE repositories (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Content-addressed blobs, shared by every repository. A 'deleting' row is being removed by garbage
-- collection: it is never served and cannot be referenced; its file may already be gone.
CREATE TABLE blobs (
  digest text PRIMARY KEY,
  size bigint NOT NULL,
  state text NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'deleting')),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Which repositories may read which blobs (pushed there, or mounted from another repository).
CREATE TABLE repository_blobs (
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest text NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
  linked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

-- Manifests and indexes, byte-exact as pushed.
CREATE TABLE manifests (
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest text NOT NULL,
  media_type text NOT NULL,
  artifact_type text,
  subject_digest text,
  annotations jsonb,
  size bigint NOT NULL,
  content bytea NOT NULL,
  pushed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

-- Blobs a manifest references (config and layers): garbage collection keeps them.
CREATE TABLE manifest_blobs (
  repository_id bigint NOT NULL,
  manifest_digest text NOT NULL,
  blob_digest text NOT NULL,
  PRIMARY KEY (repository_id, manifest_digest, blob_digest),
  FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs (blob_digest);

-- Manifests an index lists; they may be absent (sparse indexes).
CREATE TABLE manifest_children (
  repository_id bigint NOT NULL,
  manifest_digest text NOT NULL,
  child_digest text NOT NULL,
  PRIMARY KEY (repository_id, manifest_digest, child_digest),
  FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_children_by_child ON manifest_children (repository_id, child_digest);

CREATE TABLE tags (
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  name text NOT NULL,
  digest text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, name),
  FOREIGN KEY (repository_id, digest) REFERENCES manifests (repository_id, digest)
);
CREATE INDEX tags_in_order ON tags (repository_id, name COLLATE "C");
CREATE INDEX tags_by_digest ON tags (repository_id, digest);

-- Every tag move: digest is null when the tag was deleted, previous_digest when it was created.
CREATE TABLE tag_history (
  id bigserial PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  tag text NOT NULL,
  digest text,
  previous_digest text,
  actor text,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tag_history_by_tag ON tag_history (repository_id, tag, id DESC);

-- Upload sessions; their bytes are in blob storage under the same id, so they survive restarts.
CREATE TABLE uploads (
  id uuid PRIMARY KEY,
  repository text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_by_age ON uploads (updated_at);
