import type { Pool } from 'pg';
import type { RetainedTable } from '../../domain/retention/retention';

/** Each retained table's key and the time its rows age from (both indexed: db/migrations). */
const columns: Record<RetainedTable, { key: string; time: string }> = {
  sandbox_events: { key: 'id', time: 'at' },
  executions: { key: 'id', time: 'finished_at' },
  // Their parts go with them (ON DELETE CASCADE).
  compute_file_transfers: { key: 'id', time: 'created_at' },
};

/** Deletes for retention: table names come from the fixed list above, never from input text. */
export function createRetentionStore(pool: Pool) {
  return {
    /** Deletes up to `limit` of the oldest rows older than `cutoff`; answers how many went. */
    async deleteOlderThan(table: RetainedTable, cutoff: string, limit: number): Promise<number> {
      const { key, time } = columns[table];
      const { rowCount } = await pool.query(
        `DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE ${time} < $1 ORDER BY ${time} LIMIT $2)`,
        [cutoff, limit],
      );
      return rowCount ?? 0;
    },
  };
}
