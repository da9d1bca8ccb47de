import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { timed } from './timing';

export function createDatabaseActivities({ pool }: { pool: Pool }) {
  return {
    /** Writes a row, reads it back and deletes it; an upsert keeps a retried attempt single. */
    async roundTripProbeRow({ probeId }: { probeId: string }) {
      return timed(async () => {
        const nonce = randomUUID();
        await pool.query(
          `INSERT INTO self_check_probes (id, nonce) VALUES ($1, $2)
           ON CONFLICT (id) DO UPDATE SET nonce = EXCLUDED.nonce, written_at = now()`,
          [probeId, nonce],
        );
        const { rows } = await pool.query<{ nonce: string }>('SELECT nonce FROM self_check_probes WHERE id = $1', [probeId]);
        await pool.query('DELETE FROM self_check_probes WHERE id = $1', [probeId]);
        if (rows[0]?.nonce !== nonce) throw new Error('the row read back is not the row written');
        const { rows: [server] } = await pool.query<{ version: string }>("SELECT current_setting('server_version') AS version");
        return `PostgreSQL ${server?.version}: row written, read back and deleted`;
      });
    },
  };
}
