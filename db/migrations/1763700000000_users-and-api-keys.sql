-- Up Migration
CREATE TABLE users (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
  role        text NOT NULL CHECK (role IN ('user', 'admin')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

-- Only the SHA-256 of a key is kept: a leaked table reveals no usable key.
CREATE TABLE api_keys (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  key_hash    char(64) NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  label       text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- Scratch rows the platform self-check writes, reads back and deletes.
CREATE TABLE self_check_probes (
  id          text PRIMARY KEY,
  nonce       uuid NOT NULL,
  written_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE self_check_probes;
DROP TABLE api_keys;
DROP TABLE users;
