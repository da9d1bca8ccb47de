-- Up Migration
-- Chat sandboxes, issue 11: two more ways a sandbox ends, and the per-user limit's count.

-- lost: its container died (killed, the engine restarted) and was found so by an ensure or an
-- exec; failed: its create failed and what it had made was removed.
ALTER TABLE sandboxes DROP CONSTRAINT sandboxes_stop_reason_check;
ALTER TABLE sandboxes ADD CONSTRAINT sandboxes_stop_reason_check
  CHECK (stop_reason IN ('replaced', 'expired', 'stopped', 'lost', 'failed'));

-- SANDBOX_MAX_PER_USER counts one owner's creating and running sandboxes at every create.
CREATE INDEX sandboxes_live_by_owner ON sandboxes (owner_id, expires_at) WHERE status IN ('CREATING', 'RUNNING');

-- Down Migration
DROP INDEX sandboxes_live_by_owner;
UPDATE sandboxes SET stop_reason = 'stopped' WHERE stop_reason IN ('lost', 'failed');
ALTER TABLE sandboxes DROP CONSTRAINT sandboxes_stop_reason_check;
ALTER TABLE sandboxes ADD CONSTRAINT sandboxes_stop_reason_check
  CHECK (stop_reason IN ('replaced', 'expired', 'stopped'));
