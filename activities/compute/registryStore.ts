import type { Pool } from 'pg';
import type { Sealer } from '../../platform/sealer';

export interface RegistryRow {
  name: string;
  address: string;
  username: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** The sealed password is bound to its registry's name: a value copied onto another row does not open. */
const boundTo = (name: string) => `registry/${name}`;

/**
 * compute_registries: the registries sessions are converted into. The password is sealed with
 * COMPUTE_SECRETS_KEY and opened only by the node activity that pushes; no read here returns it.
 */
export function createRegistryStore(pool: Pool, sealer: Sealer) {
  return {
    async list(): Promise<RegistryRow[]> {
      return (await pool.query<RegistryRow>('SELECT name, address, username, created_at, updated_at FROM compute_registries ORDER BY name')).rows;
    },

    async get(name: string): Promise<RegistryRow | undefined> {
      return (await pool.query<RegistryRow>('SELECT name, address, username, created_at, updated_at FROM compute_registries WHERE name = $1', [name])).rows[0];
    },

    /** Creates or replaces a registry; without credentials it has none. */
    async put(name: string, registry: { address: string; username?: string; password?: string }): Promise<{ created: boolean }> {
      const sealed = registry.password === undefined ? null : sealer.seal(registry.password, boundTo(name));
      const { rows: [row] } = await pool.query<{ created: boolean }>(
        `INSERT INTO compute_registries (name, address, username, password_sealed) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET address = EXCLUDED.address, username = EXCLUDED.username, password_sealed = EXCLUDED.password_sealed, updated_at = now()
         RETURNING (xmax = 0) AS created`,
        [name, registry.address, registry.username ?? null, sealed],
      );
      return { created: row!.created };
    },

    /** The registry the bring-up provides, written only where no row exists (an admin's own setting stays). */
    async seed(name: string, address: string): Promise<void> {
      await pool.query('INSERT INTO compute_registries (name, address) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, address]);
    },

    async remove(name: string): Promise<boolean> {
      return ((await pool.query('DELETE FROM compute_registries WHERE name = $1', [name])).rowCount ?? 0) > 0;
    },

    /** The registry's credentials, opened; undefined when it has none (or no longer exists). */
    async credentials(name: string): Promise<RegistryCredentials | undefined> {
      const { rows: [row] } = await pool.query<{ username: string | null; password_sealed: Buffer | null }>('SELECT username, password_sealed FROM compute_registries WHERE name = $1', [name]);
      if (!row?.username || !row.password_sealed) return undefined;
      return { username: row.username, password: sealer.open(row.password_sealed, boundTo(name)) };
    },

    /**
     * The registry a reference is pulled from, with its credentials: the one a converted image was
     * pushed to, else a registered one whose address it starts with, else the bring-up's
     * (`defaultAddress`); undefined for any other.
     */
    async sourceOf(reference: string, defaultAddress: string): Promise<{ address: string; credentials?: RegistryCredentials } | undefined> {
      const { rows } = await pool.query<{ name: string; address: string }>(
        `SELECT r.name, r.address FROM compute_registries r
         LEFT JOIN compute_images i ON i.registry = r.name AND i.reference = $1
         WHERE starts_with($1, r.address || '/')
         ORDER BY i.registry IS NULL, r.username IS NULL, length(r.address) DESC LIMIT 1`,
        [reference],
      );
      const registered = rows[0];
      if (registered) return { address: registered.address, credentials: await this.credentials(registered.name) };
      return reference.startsWith(`${defaultAddress}/`) ? { address: defaultAddress } : undefined;
    },
  };
}

export type RegistryStore = ReturnType<typeof createRegistryStore>;
