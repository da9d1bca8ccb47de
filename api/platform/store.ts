import type { Pool } from 'pg';
import { inTransaction } from '../../platform/database';
import type { Principal, Role } from './auth';

export interface UserRow {
  id: string;
  name: string;
  role: Role;
  created_at: Date;
  disabled_at: Date | null;
  /** Keys neither revoked nor expired. */
  usable_keys: number;
}

export interface KeyRow {
  id: string;
  user_id: string;
  label: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

/** A user exists with another role than the one asked for: creating a key never changes it. */
export class RoleMismatch extends Error {
  override name = 'RoleMismatch';
  constructor(readonly user: string, readonly role: Role) {
    super(`${user} exists with the role ${role}; creating a key does not change a role`);
  }
}

// A key counts from its creation until it is revoked or its expiry passes.
const usable = (key: string) => `${key}.revoked_at IS NULL AND (${key}.expires_at IS NULL OR ${key}.expires_at > now())`;
const userColumns = `u.id, u.name, u.role, u.created_at, u.disabled_at,
  (SELECT count(*)::int FROM api_keys k WHERE k.user_id = u.id AND ${usable('k')}) AS usable_keys`;
const keyColumns = 'id, user_id, label, created_at, expires_at, revoked_at';

/** The platform's own tables: users and their API keys (stored as SHA-256 hashes only). */
export function createPlatformStore(pool: Pool) {
  async function user(id: string): Promise<UserRow | undefined> {
    const { rows: [row] } = await pool.query<UserRow>(`SELECT ${userColumns} FROM users u WHERE u.id = $1`, [id]);
    return row;
  }

  return {
    user,

    /** The user behind a key that is neither revoked nor expired, of a user who is not disabled. */
    async principalByKeyHash(keyHash: string): Promise<Principal | undefined> {
      const { rows } = await pool.query<{ user_id: string; name: string; role: Role }>(
        `SELECT u.id AS user_id, u.name, u.role
           FROM api_keys k JOIN users u ON u.id = k.user_id
          WHERE k.key_hash = $1 AND ${usable('k')} AND u.disabled_at IS NULL`,
        [keyHash],
      );
      const row = rows[0];
      return row && { userId: row.user_id, name: row.name, role: row.role };
    },

    /**
     * The CLI's path (scripts/create-api-key.ts): creates the user unless it exists (with `role`,
     * or `user`), and adds the key, in one transaction. An existing user keeps its role: asking
     * for another one fails with RoleMismatch and adds no key.
     */
    addUserKey(name: string, role: Role | undefined, keyHash: string, label: string, expiresAt?: Date): Promise<string> {
      return inTransaction(pool, async (client) => {
        await client.query('INSERT INTO users (name, role) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, role ?? 'user']);
        const { rows: [user] } = await client.query<{ id: string; role: Role }>('SELECT id, role FROM users WHERE name = $1', [name]);
        if (!user) throw new Error('user insert returned no row');
        if (role && user.role !== role) throw new RoleMismatch(name, user.role);
        await client.query('INSERT INTO api_keys (user_id, key_hash, label, expires_at) VALUES ($1, $2, $3, $4)', [user.id, keyHash, label, expiresAt ?? null]);
        return user.id;
      });
    },

    async users(): Promise<UserRow[]> {
      const { rows } = await pool.query<UserRow>(`SELECT ${userColumns} FROM users u ORDER BY u.name`);
      return rows;
    },

    /** A new user, or undefined when the name is taken. */
    async createUser(name: string, role: Role): Promise<UserRow | undefined> {
      const { rows: [created] } = await pool.query<{ id: string }>('INSERT INTO users (name, role) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id', [name, role]);
      return created && user(created.id);
    },

    /** Disables (idempotent: the first time stays) or enables a user; undefined when there is none. */
    async setDisabled(id: string, disabled: boolean): Promise<UserRow | undefined> {
      const { rowCount } = await pool.query(
        'UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END WHERE id = $1',
        [id, disabled],
      );
      return rowCount ? user(id) : undefined;
    },

    /** The user's keys, newest first (revoked and expired ones too: they are the audit trail). */
    async keysOf(userId: string): Promise<KeyRow[]> {
      const { rows } = await pool.query<KeyRow>(`SELECT ${keyColumns} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC`, [userId]);
      return rows;
    },

    async addKey(userId: string, keyHash: string, label: string, expiresAt: Date | undefined): Promise<KeyRow> {
      const { rows: [row] } = await pool.query<KeyRow>(
        `INSERT INTO api_keys (user_id, key_hash, label, expires_at) VALUES ($1, $2, $3, $4) RETURNING ${keyColumns}`,
        [userId, keyHash, label, expiresAt ?? null],
      );
      return row!;
    },

    /** Revokes one of the user's keys (idempotent: the first revocation's time stays); undefined when the user has no such key. */
    async revokeKey(userId: string, keyId: string): Promise<KeyRow | undefined> {
      const { rows: [row] } = await pool.query<KeyRow>(
        `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND user_id = $2 RETURNING ${keyColumns}`,
        [keyId, userId],
      );
      return row;
    },

    /** PostgreSQL answers at all (readiness). */
    async ping(): Promise<void> {
      await pool.query('SELECT 1');
    },
  };
}

export type PlatformStore = ReturnType<typeof createPlatformStore>;
