import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { inTransaction } from '../../platform/database';

export interface StagedFile {
  name: string;
  data: Buffer;
}

/**
 * The staging rows of file transfers (compute_file_transfers and their parts): every SQL
 * statement of list/upload/download. The api writes an upload and reads a download; the node
 * reads an upload and writes a download. A transfer belongs to one session: the node asks for it
 * with the session's id, so a transfer id can never reach another session's kernel.
 */
export function createFileTransferStore(pool: Pool) {
  return {
    /** The upload's files, one row each, in one transaction: the node sees all of them or none. */
    async createUpload(sessionId: string, files: StagedFile[]): Promise<string> {
      const id = randomUUID();
      await inTransaction(pool, async (db) => {
        await db.query("INSERT INTO compute_file_transfers (id, session_id, direction) VALUES ($1, $2, 'upload')", [id, sessionId]);
        for (const [seq, file] of files.entries()) {
          await db.query('INSERT INTO compute_file_transfer_parts (transfer_id, seq, name, data) VALUES ($1, $2, $3, $4)', [id, seq, file.name, file.data]);
        }
      });
      return id;
    },

    async createDownload(sessionId: string): Promise<string> {
      const id = randomUUID();
      await pool.query("INSERT INTO compute_file_transfers (id, session_id, direction) VALUES ($1, $2, 'download')", [id, sessionId]);
      return id;
    },

    /** An upload's files without their bytes, in order; undefined when the transfer is not this session's upload (or is gone). */
    async uploadManifest(transferId: string, sessionId: string): Promise<{ seq: number; name: string; size: number }[] | undefined> {
      const transfer = await pool.query("SELECT 1 FROM compute_file_transfers WHERE id = $1 AND session_id = $2 AND direction = 'upload'", [transferId, sessionId]);
      if (transfer.rowCount === 0) return undefined;
      const { rows } = await pool.query<{ seq: number; name: string; size: number }>(
        'SELECT seq, name, octet_length(data) AS size FROM compute_file_transfer_parts WHERE transfer_id = $1 ORDER BY seq', [transferId],
      );
      return rows;
    },

    /** One part's bytes (a file of an upload, a chunk of a download); undefined when it is not there. */
    async part(transferId: string, seq: number): Promise<Buffer | undefined> {
      // As base64 rather than bytea's hex text: a third smaller on the wire, and decoded faster
      // (node-postgres reads results as text only). Node skips the line breaks encode() puts in.
      const { rows } = await pool.query<{ data: string }>("SELECT encode(data, 'base64') AS data FROM compute_file_transfer_parts WHERE transfer_id = $1 AND seq = $2", [transferId, seq]);
      return rows[0] ? Buffer.from(rows[0].data, 'base64') : undefined;
    },

    /** Whether the transfer is this session's download (the node writes only into such a one). */
    async isDownload(transferId: string, sessionId: string): Promise<boolean> {
      const { rowCount } = await pool.query("SELECT 1 FROM compute_file_transfers WHERE id = $1 AND session_id = $2 AND direction = 'download'", [transferId, sessionId]);
      return (rowCount ?? 0) > 0;
    },

    /** What an earlier attempt of a download wrote: a retry starts over. */
    async clearParts(transferId: string): Promise<void> {
      await pool.query('DELETE FROM compute_file_transfer_parts WHERE transfer_id = $1', [transferId]);
    },

    async putChunk(transferId: string, seq: number, data: Buffer): Promise<void> {
      await pool.query("INSERT INTO compute_file_transfer_parts (transfer_id, seq, name, data) VALUES ($1, $2, '', $3)", [transferId, seq, data]);
    },

    /** The transfer and its parts; one already gone is done. */
    async deleteTransfer(transferId: string): Promise<void> {
      await pool.query('DELETE FROM compute_file_transfers WHERE id = $1', [transferId]);
    },
  };
}

export type FileTransferStore = ReturnType<typeof createFileTransferStore>;
