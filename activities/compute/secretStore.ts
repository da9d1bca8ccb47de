import type { Pool } from 'pg';
import { domainFailure } from '../../domain/shared/errors';
import { Sealer } from '../../platform/sealer';

/**
 * compute_secrets rows: a session's secret_env (JSON object of name → value) and a cluster's
 * SSH key pair, each sealed with COMPUTE_SECRETS_KEY and bound to its row id. Only the node
 * activity that makes a kernel opens them; nothing here logs or returns them elsewhere.
 */
export function computeSecretsSealer(base64Key: string | undefined): Sealer {
  return new Sealer(base64Key, () => domainFailure('SecretsKeyMissing', 'COMPUTE_SECRETS_KEY is not set: compute secrets cannot be sealed or opened'));
}

export function createSecretStore(pool: Pool, sealer: Sealer) {
  return {
    /** The row's plaintext, or undefined when there is no such row. */
    async open(id: string): Promise<string | undefined> {
      const { rows } = await pool.query<{ sealed: Buffer }>('SELECT sealed FROM compute_secrets WHERE id = $1', [id]);
      const row = rows[0];
      if (!row) return undefined;
      try {
        return sealer.open(row.sealed, id);
      } catch (err) {
        if (!sealer.hasKey) throw err;
        // Another key, or a value copied from another row: retrying cannot help, and the cause says nothing worth keeping.
        throw domainFailure('Internal', `compute secret ${id} does not open with COMPUTE_SECRETS_KEY`);
      }
    },

    /** Seals and inserts the row unless one with this id exists (kept as it is); true when this call inserted it. */
    async insertIfMissing(id: string, ownerId: string, plaintext: () => string): Promise<boolean> {
      const exists = await pool.query('SELECT 1 FROM compute_secrets WHERE id = $1', [id]);
      if (exists.rowCount) return false;
      const inserted = await pool.query('INSERT INTO compute_secrets (id, owner_id, sealed) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [id, ownerId, sealer.seal(plaintext(), id)]);
      return inserted.rowCount === 1;
    },
  };
}
