-- Up Migration
-- SSH hosts terminals connect to. The credential (private key or password) is stored only as
-- AES-256-GCM ciphertext (iv ‖ tag ‖ ciphertext) under a key from the environment.
CREATE TABLE terminal_hosts (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name               text NOT NULL UNIQUE,
  address            text NOT NULL,
  port               integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  username           text NOT NULL,
  auth_type          text NOT NULL CHECK (auth_type IN ('private_key', 'password')),
  credential_sealed  bytea NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The read model of terminal/<id> workflows; only their activities write it.
CREATE TABLE terminal_sessions (
  id                    char(64) PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
  user_id               uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  host_id               uuid REFERENCES terminal_hosts (id) ON DELETE SET NULL,
  host_name             text NOT NULL,
  mode                  text NOT NULL CHECK (mode IN ('embedded', 'popout')),
  token_hash            char(64) NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  status                text NOT NULL CHECK (status IN ('active', 'closed', 'expired')),
  reason_closed         text CHECK (reason_closed IN ('user_close', 'ttl', 'idle', 'client_lost')),
  created_at            timestamptz NOT NULL,
  last_seen_at          timestamptz NOT NULL,
  expires_at            timestamptz NOT NULL,
  closed_at             timestamptz,
  idle_timeout_seconds  integer NOT NULL
);
CREATE INDEX terminal_sessions_active ON terminal_sessions (user_id, host_id, mode) WHERE status = 'active';
CREATE INDEX terminal_sessions_user ON terminal_sessions (user_id, created_at DESC);

-- Down Migration
DROP TABLE terminal_sessions;
DROP TABLE terminal_hosts;
