-- Up Migration
-- Registries a session can be converted into (reference data, admin): the address engines push
-- to, and optional credentials, the password sealed with COMPUTE_SECRETS_KEY bound to the name.
CREATE TABLE compute_registries (
  name            text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  address         text NOT NULL CHECK (address ~ '^[A-Za-z0-9.-]+(:[0-9]+)?$'),
  username        text,
  password_sealed bytea,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((username IS NULL) = (password_sealed IS NULL))
);

-- Images are global (owner_id NULL, the admin's) or a user's own (made by converting a session):
-- one user's my-env:v1 is not another's, so the name is unique per owner, not overall.
ALTER TABLE compute_images ADD COLUMN owner_id uuid REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE compute_images DROP CONSTRAINT compute_images_pkey;
CREATE UNIQUE INDEX compute_images_global_name ON compute_images (name) WHERE owner_id IS NULL;
CREATE UNIQUE INDEX compute_images_owner_name ON compute_images (owner_id, name) WHERE owner_id IS NOT NULL;

-- How many images of their own a user may hold (NULL: the configured default).
ALTER TABLE compute_resource_policies ADD COLUMN max_customized_images integer CHECK (max_customized_images >= 0);

-- Commits of a session's main kernel: `commit` keeps the image on the node, `convert` also pushes
-- it to a registry and registers it as the owner's image. At most one ongoing per session.
CREATE TABLE compute_commits (
  id          uuid PRIMARY KEY,
  session_id  uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('commit', 'convert')),
  image_name  text,
  registry    text,
  status      text NOT NULL CHECK (status IN ('ongoing', 'finished', 'failed', 'cancelled')),
  progress    jsonb NOT NULL DEFAULT '{}',
  error       jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX compute_commits_one_ongoing ON compute_commits (session_id) WHERE status = 'ongoing';
CREATE INDEX compute_commits_session ON compute_commits (session_id, created_at DESC);

-- Down Migration
DROP TABLE compute_commits;
ALTER TABLE compute_resource_policies DROP COLUMN max_customized_images;
DELETE FROM compute_images WHERE owner_id IS NOT NULL;
DROP INDEX compute_images_owner_name;
DROP INDEX compute_images_global_name;
ALTER TABLE compute_images DROP COLUMN owner_id;
ALTER TABLE compute_images ADD PRIMARY KEY (name);
DROP TABLE compute_registries;
