-- Up Migration
-- Chat sandboxes (seed 003). The sandbox/<chatId> workflows are the source of truth; these
-- tables are the read model their activities write and the api reads.

-- A chat belongs to the user whose key first ensured a sandbox for it.
CREATE TABLE sandbox_chats (
  chat_id     uuid PRIMARY KEY,
  owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per sandbox session. The row is written before its container exists, so the
-- orphan sweep never removes a container that is being created.
CREATE TABLE sandboxes (
  session_id      uuid PRIMARY KEY,
  chat_id         uuid NOT NULL REFERENCES sandbox_chats (chat_id) ON DELETE CASCADE,
  owner_id        uuid NOT NULL,
  container_name  text NOT NULL UNIQUE,
  container_id    text,
  status          text NOT NULL CHECK (status IN ('CREATING', 'RUNNING', 'EXPIRED', 'STOPPED')),
  created_at      timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  stopped_at      timestamptz,
  stop_reason     text CHECK (stop_reason IN ('replaced', 'expired', 'stopped'))
);
CREATE INDEX sandboxes_live_by_chat ON sandboxes (chat_id, created_at DESC) WHERE status <> 'STOPPED';
CREATE INDEX sandboxes_live_by_expiry ON sandboxes (expires_at) WHERE status IN ('RUNNING', 'EXPIRED');

-- The seed's structured events, kept so /metrics can count them across every worker.
CREATE TABLE sandbox_events (
  id            bigserial PRIMARY KEY,
  event         text NOT NULL,
  chat_id       uuid NOT NULL,
  session_id    uuid NOT NULL,
  container_id  text NOT NULL,
  error         text,
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_events_by_chat ON sandbox_events (chat_id, id);

-- Down Migration
DROP TABLE sandbox_events;
DROP TABLE sandboxes;
DROP TABLE sandbox_chats;
