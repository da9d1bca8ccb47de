-- Up Migration
-- A key may carry an expiry; past it the key is refused like a revoked one.
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;

-- Disabling a user (or revoking their last usable key) stops every sandbox of theirs not
-- stopped yet, expired ones included (sandboxes_live_by_owner covers creating and running only).
CREATE INDEX sandboxes_unstopped_by_owner ON sandboxes (owner_id) WHERE status <> 'STOPPED';

-- Down Migration
DROP INDEX sandboxes_unstopped_by_owner;
ALTER TABLE api_keys DROP COLUMN expires_at;
