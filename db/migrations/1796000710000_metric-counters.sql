-- Up Migration
-- Counters /metrics reads instead of counting event and session rows on every scrape: a scrape
-- reads a handful of rows here whatever the tables' size, and a counter never goes down when
-- retention deletes old rows (Prometheus counters must not). Triggers keep them, so every
-- writer — each worker's activities — counts, in the same transaction as its row. Each counter
-- is spread over a few rows (shard: the writing backend's pid modulo 16) so concurrent writers
-- do not queue on one row's lock until they commit; readers sum the shards.
CREATE TABLE metric_counters (
  metric  text NOT NULL,
  label   text NOT NULL,
  shard   smallint NOT NULL,
  value   bigint NOT NULL,
  PRIMARY KEY (metric, label, shard)
);

-- sessionflow_sandbox_events_total{event}: once per statement, with what it inserted (a bulk
-- insert bumps each event's counter once, not once per row).
CREATE FUNCTION count_sandbox_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_counters (metric, label, shard, value)
    SELECT 'sandbox_event', event, pg_backend_pid() % 16, count(*) FROM inserted GROUP BY event
  ON CONFLICT (metric, label, shard) DO UPDATE SET value = metric_counters.value + EXCLUDED.value;
  RETURN NULL;
END $$;
CREATE TRIGGER sandbox_events_counted AFTER INSERT ON sandbox_events
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION count_sandbox_events();

-- sessionflow_terminal_sessions_ended{reason}: a session ends once, when its reason is set (the
-- first reason stays). Row-level on update, so the WHEN clause keeps the frequent heartbeat
-- updates free of it; a row inserted already ended (imports, tests) counts per statement.
CREATE FUNCTION count_terminal_session_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_counters (metric, label, shard, value) VALUES ('terminal_session_ended', NEW.reason_closed, pg_backend_pid() % 16, 1)
  ON CONFLICT (metric, label, shard) DO UPDATE SET value = metric_counters.value + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER terminal_sessions_ended_counted AFTER UPDATE OF reason_closed ON terminal_sessions
  FOR EACH ROW WHEN (OLD.reason_closed IS NULL AND NEW.reason_closed IS NOT NULL) EXECUTE FUNCTION count_terminal_session_ended();

CREATE FUNCTION count_terminal_sessions_inserted_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_counters (metric, label, shard, value)
    SELECT 'terminal_session_ended', reason_closed, pg_backend_pid() % 16, count(*) FROM inserted WHERE reason_closed IS NOT NULL GROUP BY reason_closed
  ON CONFLICT (metric, label, shard) DO UPDATE SET value = metric_counters.value + EXCLUDED.value;
  RETURN NULL;
END $$;
CREATE TRIGGER terminal_sessions_inserted_ended_counted AFTER INSERT ON terminal_sessions
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION count_terminal_sessions_inserted_ended();

-- What happened before this migration (the triggers exist already, and hold their tables'
-- locks until commit, so no row is counted twice or missed).
INSERT INTO metric_counters (metric, label, shard, value)
  SELECT 'sandbox_event', event, 0, count(*) FROM sandbox_events GROUP BY event
  ON CONFLICT (metric, label, shard) DO UPDATE SET value = metric_counters.value + EXCLUDED.value;
INSERT INTO metric_counters (metric, label, shard, value)
  SELECT 'terminal_session_ended', reason_closed, 0, count(*) FROM terminal_sessions WHERE reason_closed IS NOT NULL GROUP BY reason_closed
  ON CONFLICT (metric, label, shard) DO UPDATE SET value = metric_counters.value + EXCLUDED.value;

-- Down Migration
DROP TRIGGER terminal_sessions_inserted_ended_counted ON terminal_sessions;
DROP TRIGGER terminal_sessions_ended_counted ON terminal_sessions;
DROP TRIGGER sandbox_events_counted ON sandbox_events;
DROP FUNCTION count_terminal_sessions_inserted_ended();
DROP FUNCTION count_terminal_session_ended();
DROP FUNCTION count_sandbox_events();
DROP TABLE metric_counters;
