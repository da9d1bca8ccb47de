-- Up Migration
-- One row per code execution (seed 001): who ran what, where, and the full (capped) result.
-- The workflow's history keeps only a short prefix of the output; the api reads the rest here.
CREATE TABLE executions (
  id           uuid PRIMARY KEY,
  owner_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  language     text NOT NULL,
  version      text NOT NULL,
  session_id   text,
  executor     text NOT NULL CHECK (executor IN ('docker', 'local')),
  container_id text,
  status       text NOT NULL,
  result       jsonb NOT NULL,
  finished_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX executions_owner_finished ON executions (owner_id, finished_at DESC);

-- Down Migration
DROP TABLE executions;
