import type { Pool } from 'pg';
import { inTransaction } from '../../platform/database';
import type { Principal, Role } from './auth';

/** The platform's own tables: users and their API keys (stored as SHA-256 hashes only). */
export function createPlatformStore(pool: Pool) {
  return {
    /** The user behind a key that is neither revoked nor of a disabled user. */
    async principalByKeyHash(keyHash: string): Promise<Principal | undefined> {
      const { rows } = await pool.query<{ user_id: string; name: string; role: Role }>(
        `SELECT u.id AS user_id, u.name, u.role
           FROM api_keys k JOIN users u ON u.id = k.user_id
          WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.disabled_at IS NULL`,
        [keyHash],
      );
      const row = rows[0];
      return row && { userId: row.user_id, name: row.name, role: row.role };
    },

    /** Creates the user (or gives an existing one this role) and adds the key, in one transaction. */
    addUserKey(name: string, role: Role, keyHash: string, label: string): Promise<string> {
      return inTransaction(pool, async (client) => {
        const { rows: [user] } = await client.query<{ id: string }>(
          `INSERT INTO users (name, role) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role
           RETURNING id`,
          [name, role],
        );
        if (!user) throw new Error('user upsert returned no row');
        await client.query('INSERT INTO api_keys (user_id, key_hash, label) VALUES ($1, $2, $3)', [user.id, keyHash, label]);
        return user.id;
      });
    },

    /** PostgreSQL answers at all (readiness). */
    async ping(): Promise<void> {
      await pool.query('SELECT 1');
    },
  };
}
