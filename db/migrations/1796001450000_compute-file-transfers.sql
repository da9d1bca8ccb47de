-- Up Migration
-- Staging of compute session file transfers (list/upload/download): file bytes never travel
-- through Temporal (2 MB payloads, small histories), so the api and the node hand them over
-- here. An upload is one row per file, written by the api in one transaction and read by the
-- node that feeds the kernel; a download is 1 MiB chunks written by the node and streamed by
-- the api, which deletes the transfer once done. The retention sweep deletes what a crashed api
-- left behind an hour later.
-- Unlogged: the rows live for one request, so writing them to the WAL only halves the speed; a
-- database crash empties these tables, which fails the transfers in flight and nothing else.
CREATE UNLOGGED TABLE compute_file_transfers (
  id         uuid PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES compute_sessions (id) ON DELETE CASCADE,
  direction  text NOT NULL CHECK (direction IN ('upload', 'download')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX compute_file_transfers_created_at ON compute_file_transfers (created_at);

CREATE UNLOGGED TABLE compute_file_transfer_parts (
  transfer_id uuid NOT NULL REFERENCES compute_file_transfers (id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  -- An upload's file name (relative to its target directory); empty for a download's chunks.
  name        text NOT NULL,
  data        bytea NOT NULL,
  PRIMARY KEY (transfer_id, seq)
);
-- Out of line and uncompressed: the bytes pass through once, and compressing them costs more
-- time than the space it saves for a row that lives seconds.
ALTER TABLE compute_file_transfer_parts ALTER COLUMN data SET STORAGE EXTERNAL;

-- Down Migration
DROP TABLE compute_file_transfer_parts;
DROP TABLE compute_file_transfers;
