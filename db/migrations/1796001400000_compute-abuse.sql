-- Up Migration
-- Abuse of a kernel's share (issue 14). A user's resource policy gains the thresholds (in % of
-- a kernel's allocation) and the action the reconciler takes; NULL is the configured default
-- (COMPUTE_DEFAULT_ABUSE_*), so a policy written before keeps following the defaults.
ALTER TABLE compute_resource_policies
  ADD COLUMN abuse_cpu_warning_percent numeric(5, 2) CHECK (abuse_cpu_warning_percent > 0 AND abuse_cpu_warning_percent <= 100),
  ADD COLUMN abuse_cpu_percent         numeric(5, 2) CHECK (abuse_cpu_percent > 0 AND abuse_cpu_percent <= 100),
  ADD COLUMN abuse_memory_percent      numeric(5, 2) CHECK (abuse_memory_percent > 0 AND abuse_memory_percent <= 100),
  ADD COLUMN abuse_action              text CHECK (abuse_action IN ('warn', 'terminate'));

-- The reconciler's last look at each kernel, kept across restarts: its verdict, how many
-- consecutive looks found it abusing, the figures, and which look that was (a retried
-- activity applies the same look once).
CREATE TABLE compute_kernel_abuse (
  kernel_id     uuid PRIMARY KEY REFERENCES compute_kernels (id) ON DELETE CASCADE,
  session_id    uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  verdict       text NOT NULL CHECK (verdict IN ('ok', 'warning', 'abusing')),
  abusing_looks integer NOT NULL CHECK (abusing_looks >= 0),
  figures       jsonb NOT NULL,
  look_id       text NOT NULL,
  looked_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX compute_kernel_abuse_session ON compute_kernel_abuse (session_id);

-- A session whose owner's action is `warn`: the last warning (when, how many looks, the
-- abusing kernels' figures). It stays after the kernel calms down: it is a record.
ALTER TABLE compute_sessions ADD COLUMN abuse_warning jsonb;

-- What a status change carries beyond its reason: the figures of an end for abuse.
ALTER TABLE compute_status_history ADD COLUMN details jsonb;

-- Down Migration
ALTER TABLE compute_status_history DROP COLUMN details;
ALTER TABLE compute_sessions DROP COLUMN abuse_warning;
DROP TABLE compute_kernel_abuse;
ALTER TABLE compute_resource_policies
  DROP COLUMN abuse_action,
  DROP COLUMN abuse_memory_percent,
  DROP COLUMN abuse_cpu_percent,
  DROP COLUMN abuse_cpu_warning_percent;
