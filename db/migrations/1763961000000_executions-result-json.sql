-- Up Migration
-- A program's output is the user's data and may hold NUL characters. jsonb refuses the JSON
-- escape \u0000 (PostgreSQL text cannot hold NUL), so recording such a result failed and the
-- execution answered 500. json keeps the text as written, escapes included; nothing queries
-- inside `result`, the api only reads it back whole.
ALTER TABLE executions ALTER COLUMN result TYPE json USING result::json;

-- Down Migration
-- jsonb cannot hold NUL: each escaped NUL becomes U+FFFD. A literal backslash is parked on
-- chr(1) meanwhile (JSON text escapes control characters, so none appears raw), so a user's
-- own "\\u0000" text is left alone.
ALTER TABLE executions ALTER COLUMN result TYPE jsonb
  USING replace(replace(replace(result::text, '\\', chr(1)), '\u0000', '\ufffd'), chr(1), '\\')::jsonb;
