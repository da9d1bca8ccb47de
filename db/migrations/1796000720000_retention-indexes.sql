-- Up Migration
-- The retention sweep deletes rows older than a cutoff in bounded batches: each batch finds its
-- rows through these indexes instead of scanning the table.
CREATE INDEX sandbox_events_at ON sandbox_events (at);
CREATE INDEX executions_finished_at ON executions (finished_at);

-- Down Migration
DROP INDEX executions_finished_at;
DROP INDEX sandbox_events_at;
