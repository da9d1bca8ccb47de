import type { Pool } from 'pg';
import { finalComputeStatuses } from '../../domain/compute/status';
import type { AppProtocol, ImageApps } from '../../domain/compute/services';
import type { Sealer } from '../../platform/sealer';

/** One compute_services row, its token still sealed. */
export interface ServiceRow {
  session_id: string;
  name: string;
  kernel_id: string;
  node: string;
  protocol: AppProtocol;
  url_path: string;
  requested_port: number;
  container_port: number;
  host_port: number;
  sealed_token: Buffer;
  created_at: Date;
  /** From compute_kernels: where the listener relays to. */
  container_id: string | null;
  hostname: string;
}

/** What a node's listener needs of a row, with whether its session still lives. */
export interface ServiceListenerRow extends ServiceRow {
  live: boolean;
}

export type NewService = Omit<ServiceRow, 'sealed_token' | 'created_at' | 'container_id' | 'hostname'> & { token: string };

const columns = `s.session_id, s.name, s.kernel_id, s.node, s.protocol, s.url_path, s.requested_port, s.container_port, s.host_port,
  s.sealed_token, s.created_at, k.container_id, k.hostname`;

/** A token is bound to its service's key, so one copied onto another row does not open. */
export const serviceTokenBinding = (sessionId: string, name: string) => `service/${sessionId}/${name}`;

/**
 * compute_services (every SQL statement of services) and the apps of images. Node activities
 * write it; the api reads it for the session's info and opens tokens for their owner.
 */
export function createServiceStore(pool: Pool, sealer: Sealer) {
  return {
    async service(sessionId: string, name: string): Promise<ServiceRow | undefined> {
      const { rows } = await pool.query<ServiceRow>(`SELECT ${columns} FROM compute_services s JOIN compute_kernels k ON k.id = s.kernel_id WHERE s.session_id = $1 AND s.name = $2`, [sessionId, name]);
      return rows[0];
    },

    async sessionServices(sessionId: string): Promise<ServiceRow[]> {
      const { rows } = await pool.query<ServiceRow>(`SELECT ${columns} FROM compute_services s JOIN compute_kernels k ON k.id = s.kernel_id WHERE s.session_id = $1 ORDER BY s.created_at, s.name`, [sessionId]);
      return rows;
    },

    /** Container ports taken by the kernel's services, host ports taken on the node. */
    async portsInUse(kernelId: string, node: string): Promise<{ container: Set<number>; host: Set<number> }> {
      const { rows } = await pool.query<{ kernel_id: string; container_port: number; host_port: number }>(
        'SELECT kernel_id, container_port, host_port FROM compute_services WHERE kernel_id = $1 OR node = $2', [kernelId, node],
      );
      return { container: new Set(rows.filter((r) => r.kernel_id === kernelId).map((r) => r.container_port)), host: new Set(rows.map((r) => r.host_port)) };
    },

    /**
     * Inserts the service with its token sealed. 'exists' when a row of that name is there (a
     * concurrent start), 'port-taken' when another service holds one of its ports.
     */
    async insert(service: NewService): Promise<'inserted' | 'exists' | 'port-taken'> {
      try {
        await pool.query(
          `INSERT INTO compute_services (session_id, name, kernel_id, node, protocol, url_path, requested_port, container_port, host_port, sealed_token)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [service.session_id, service.name, service.kernel_id, service.node, service.protocol, service.url_path, service.requested_port,
            service.container_port, service.host_port, sealer.seal(service.token, serviceTokenBinding(service.session_id, service.name))],
        );
        return 'inserted';
      } catch (err) {
        const { code, constraint } = err as { code?: string; constraint?: string };
        if (code !== '23505') throw err;
        return constraint === 'compute_services_pkey' ? 'exists' : 'port-taken';
      }
    },

    openToken(row: Pick<ServiceRow, 'session_id' | 'name' | 'sealed_token'>): string {
      return sealer.open(row.sealed_token, serviceTokenBinding(row.session_id, row.name));
    },

    /** The listener could not have its port back (taken on the node meanwhile): the service moves. */
    async moveHostPort(sessionId: string, name: string, hostPort: number): Promise<void> {
      await pool.query('UPDATE compute_services SET host_port = $3 WHERE session_id = $1 AND name = $2', [sessionId, name, hostPort]);
    },

    async remove(sessionId: string, name: string): Promise<boolean> {
      return ((await pool.query('DELETE FROM compute_services WHERE session_id = $1 AND name = $2', [sessionId, name])).rowCount ?? 0) > 0;
    },

    async removeSession(sessionId: string): Promise<void> {
      await pool.query('DELETE FROM compute_services WHERE session_id = $1', [sessionId]);
    },

    /** A node's services, each with whether its session lives (a listener to keep) or has ended (one to close). */
    async nodeServices(node: string): Promise<ServiceListenerRow[]> {
      const { rows } = await pool.query<ServiceListenerRow>(
        `SELECT ${columns}, c.status <> ALL($2::text[]) AS live
         FROM compute_services s JOIN compute_kernels k ON k.id = s.kernel_id JOIN compute_sessions c ON c.id = s.session_id
         WHERE s.node = $1`,
        [node, finalComputeStatuses],
      );
      return rows;
    },

    /** The apps a session's image offers now (none when the image is gone or has none). */
    async sessionApps(sessionId: string): Promise<ImageApps> {
      const { rows } = await pool.query<{ apps: ImageApps | null }>('SELECT i.apps FROM compute_sessions s JOIN compute_images i ON i.name = s.image WHERE s.id = $1', [sessionId]);
      return rows[0]?.apps ?? {};
    },
  };
}

export type ServiceStore = ReturnType<typeof createServiceStore>;
