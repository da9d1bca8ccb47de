-- Up Migration
-- The last container logs of each kernel, kept when its session ends (before the kernels are
-- removed): an ended session's logs are read from here. `logs` is the JSON array of lines
-- ({ at, stream, text }) as the node read them, capped; `truncated` says older lines were left out.
CREATE TABLE compute_kernel_logs (
  kernel_id  uuid PRIMARY KEY REFERENCES compute_kernels (id) ON DELETE CASCADE,
  session_id uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  logs       text NOT NULL,
  truncated  boolean NOT NULL,
  stored_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX compute_kernel_logs_session ON compute_kernel_logs (session_id);

-- Down Migration
DROP TABLE compute_kernel_logs;
