-- Up Migration
-- SSH host keys are pinned: OpenSSH's SHA256 fingerprint of the key a host must present, the
-- key type when known (connections then negotiate only that type), who pinned it ('admin':
-- given at registration or later; 'first_use': recorded from the first connection) and when.
-- Rows from before this migration stay unpinned; docs/kinds/terminal.md and docs/kinds/pxe.md
-- say what an unpinned host gets (trust on first use without a password, or a refusal).
ALTER TABLE terminal_hosts
  ADD COLUMN host_key_fingerprint text CHECK (host_key_fingerprint ~ '^SHA256:[A-Za-z0-9+/]{43}$'),
  ADD COLUMN host_key_algorithm   text,
  ADD COLUMN host_key_source      text CHECK (host_key_source IN ('admin', 'first_use')),
  ADD COLUMN host_key_pinned_at   timestamptz,
  ADD CONSTRAINT terminal_hosts_host_key_whole CHECK ((host_key_fingerprint IS NULL) = (host_key_source IS NULL) AND (host_key_fingerprint IS NULL) = (host_key_pinned_at IS NULL));

ALTER TABLE pxe_boot_servers
  ADD COLUMN host_key_fingerprint text CHECK (host_key_fingerprint ~ '^SHA256:[A-Za-z0-9+/]{43}$'),
  ADD COLUMN host_key_algorithm   text,
  ADD COLUMN host_key_source      text CHECK (host_key_source IN ('admin', 'first_use')),
  ADD COLUMN host_key_pinned_at   timestamptz,
  ADD CONSTRAINT pxe_boot_servers_host_key_whole CHECK ((host_key_fingerprint IS NULL) = (host_key_source IS NULL) AND (host_key_fingerprint IS NULL) = (host_key_pinned_at IS NULL));

-- One live WebSocket ↔ SSH bridge per terminal session, across api processes: each new bridge
-- takes the next claim number and NOTIFYs it; a bridge holding a lower claim closes. Written by
-- the api (bridges are not workflow material), never by activities.
CREATE SEQUENCE terminal_bridge_claims;
CREATE TABLE terminal_bridges (
  session_id  char(64) PRIMARY KEY REFERENCES terminal_sessions (id) ON DELETE CASCADE,
  claim       bigint NOT NULL,
  claimed_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE terminal_bridges;
DROP SEQUENCE terminal_bridge_claims;
ALTER TABLE pxe_boot_servers DROP CONSTRAINT pxe_boot_servers_host_key_whole,
  DROP COLUMN host_key_fingerprint, DROP COLUMN host_key_algorithm, DROP COLUMN host_key_source, DROP COLUMN host_key_pinned_at;
ALTER TABLE terminal_hosts DROP CONSTRAINT terminal_hosts_host_key_whole,
  DROP COLUMN host_key_fingerprint, DROP COLUMN host_key_algorithm, DROP COLUMN host_key_source, DROP COLUMN host_key_pinned_at;
