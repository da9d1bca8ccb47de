import type { Pool } from 'pg';

/** The self-check's probe rows: written, read back and deleted by the PostgreSQL probe. */
export function createSelfCheckStore(pool: Pool) {
  return {
    /** An upsert keeps a retried attempt single. */
    async writeProbeRow(id: string, nonce: string): Promise<void> {
      await pool.query(
        `INSERT INTO self_check_probes (id, nonce) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET nonce = EXCLUDED.nonce, written_at = now()`,
        [id, nonce],
      );
    },

    async probeNonce(id: string): Promise<string | undefined> {
      const { rows } = await pool.query<{ nonce: string }>('SELECT nonce FROM self_check_probes WHERE id = $1', [id]);
      return rows[0]?.nonce;
    },

    async deleteProbeRow(id: string): Promise<void> {
      await pool.query('DELETE FROM self_check_probes WHERE id = $1', [id]);
    },

    async serverVersion(): Promise<string | undefined> {
      const { rows: [server] } = await pool.query<{ version: string }>("SELECT current_setting('server_version') AS version");
      return server?.version;
    },
  };
}
