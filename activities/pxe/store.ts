import type { Pool } from 'pg';
import type { DhcpHostEntry } from '../../domain/pxe/dhcpHosts';
import type { TargetDriverName } from '../../domain/pxe/iscsiTarget';
import type { PxeImageFormat, PxeImageStatus, PxeSessionStatus } from '../../domain/pxe/pxe';
import { hostKeyColumnList, pinOf, type HostKeyColumns } from '../shared/hostKeyStore';
import type { HostKeyPin } from '../shared/hostKeys';
import type { SshTarget } from '../shared/ssh';

/** A boot server as the activities need it (the api never returns the key). */
export interface BootServer {
  id: string;
  name: string;
  ssh: SshTarget;
  tftpRoot: string;
  dhcpHostsFile: string;
  dhcpReloadCommand: string;
  dhcpServiceCheck: string;
  tftpServiceCheck: string;
  targetDriver: TargetDriverName;
  tgtControlPort: number | null;
  portalIp: string;
  iqnPrefix: string;
  imageDir: string;
}

interface BootServerRow extends HostKeyColumns {
  id: string; name: string; ssh_host: string; ssh_port: number; ssh_user: string; ssh_private_key: string;
  tftp_root: string; dhcp_hosts_file: string; dhcp_reload_command: string; dhcp_service_check: string; tftp_service_check: string;
  target_driver: TargetDriverName; tgt_control_port: number | null; portal_ip: string; iqn_prefix: string; image_dir: string;
}

/** A boot server as the api shows it: without its private key. */
export type PublicBootServerRow = Omit<BootServerRow, 'ssh_private_key'> & { created_at: Date };
/** A new boot server; its host key pinned by the admin, or left for the first connection. */
type NewBootServer = Omit<BootServerRow, 'id' | keyof HostKeyColumns> & { host_key: HostKeyPin | null };

interface MachineRow {
  id: string; name: string; mac: string; ip: string; boot_mode: 'bios' | 'uefi'; boot_server_id: string; created_at: Date;
}

interface ImageRow {
  id: string; name: string; filename: string; format: PxeImageFormat; size_bytes: number | null; status: PxeImageStatus;
  progress: number; error: string | null; boot_server_id: string; created_at: Date;
}

export interface SessionRow {
  id: string; machine_id: string; image_id: string; session_type: string; description: string; status: PxeSessionStatus;
  error: { type: string; message: string; step?: string } | null; workflow_id: string;
  created_at: Date; started_at: Date | null; stopped_at: Date | null;
}

/** A machine with its boot server's iSCSI settings and its active session's script, if any. */
interface MachineBootRow {
  session_id: string | null; boot_script: string | null; id: string; name: string; mac: string; ip: string; tid: number;
  bs_id: string; target_driver: TargetDriverName; portal_ip: string; iqn_prefix: string; image_dir: string; tgt_control_port: number | null;
}

const bootServerColumns = `id, name, ssh_host, ssh_port, ssh_user, tftp_root, dhcp_hosts_file, dhcp_reload_command, dhcp_service_check, tftp_service_check,
  target_driver, tgt_control_port, portal_ip, iqn_prefix, image_dir, created_at, ${hostKeyColumnList}`;
const machineColumns = 'id, name, mac, ip, boot_mode, boot_server_id, created_at';
const imageColumns = 'id, name, filename, format, size_bytes::float8 AS size_bytes, status, progress, error, boot_server_id, created_at';
const sessionColumns = 'id, machine_id, image_id, session_type, description, status, error, workflow_id, created_at, started_at, stopped_at';

/**
 * The PXE read model: boot servers, machines, images and sessions, read by the api and written
 * by both. `owner` scopes a read to one owner's rows; undefined reads every owner's (an admin,
 * or an activity acting for the owner the workflow was started for).
 */
export function createPxeStore(pool: Pool) {
  return {
    async bootServer(id: string): Promise<BootServer | undefined> {
      const { rows: [row] } = await pool.query<BootServerRow>('SELECT * FROM pxe_boot_servers WHERE id = $1', [id]);
      return row && {
        id: row.id, name: row.name,
        ssh: { host: row.ssh_host, port: row.ssh_port, username: row.ssh_user, privateKey: row.ssh_private_key, hostKey: { pinned: pinOf(row) } },
        tftpRoot: row.tftp_root, dhcpHostsFile: row.dhcp_hosts_file, dhcpReloadCommand: row.dhcp_reload_command,
        dhcpServiceCheck: row.dhcp_service_check, tftpServiceCheck: row.tftp_service_check,
        targetDriver: row.target_driver, tgtControlPort: row.tgt_control_port, portalIp: row.portal_ip, iqnPrefix: row.iqn_prefix, imageDir: row.image_dir,
      };
    },

    async bootServerExists(id: string): Promise<boolean> {
      const { rowCount } = await pool.query('SELECT 1 FROM pxe_boot_servers WHERE id = $1', [id]);
      return Boolean(rowCount);
    },

    async publicBootServer(id: string): Promise<PublicBootServerRow | undefined> {
      const { rows: [row] } = await pool.query<PublicBootServerRow>(`SELECT ${bootServerColumns} FROM pxe_boot_servers WHERE id = $1`, [id]);
      return row;
    },

    async publicBootServers(): Promise<PublicBootServerRow[]> {
      const { rows } = await pool.query<PublicBootServerRow>(`SELECT ${bootServerColumns} FROM pxe_boot_servers ORDER BY name`);
      return rows;
    },

    /** Fails with PostgreSQL's unique violation (23505) when the name is taken. */
    async createBootServer(server: NewBootServer): Promise<PublicBootServerRow> {
      const { rows: [row] } = await pool.query<PublicBootServerRow>(
        `INSERT INTO pxe_boot_servers (name, ssh_host, ssh_port, ssh_user, ssh_private_key, tftp_root, dhcp_hosts_file, dhcp_reload_command, dhcp_service_check,
           tftp_service_check, target_driver, tgt_control_port, portal_ip, iqn_prefix, image_dir,
           host_key_fingerprint, host_key_algorithm, host_key_source, host_key_pinned_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
           CASE WHEN $16::text IS NULL THEN NULL ELSE 'admin' END, CASE WHEN $16::text IS NULL THEN NULL ELSE now() END)
         RETURNING ${bootServerColumns}`,
        [server.name, server.ssh_host, server.ssh_port, server.ssh_user, server.ssh_private_key, server.tftp_root, server.dhcp_hosts_file, server.dhcp_reload_command, server.dhcp_service_check,
          server.tftp_service_check, server.target_driver, server.tgt_control_port, server.portal_ip, server.iqn_prefix, server.image_dir,
          server.host_key?.fingerprint ?? null, server.host_key?.algorithm ?? null],
      );
      return row!;
    },

    /** Fails with PostgreSQL's unique violation (23505) when the MAC or the IP is taken. */
    async createMachine(ownerId: string, machine: Pick<MachineRow, 'name' | 'mac' | 'ip' | 'boot_mode' | 'boot_server_id'>): Promise<MachineRow> {
      const { rows: [row] } = await pool.query<MachineRow>(
        `INSERT INTO pxe_machines (owner_id, name, mac, ip, boot_mode, boot_server_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${machineColumns}`,
        [ownerId, machine.name, machine.mac, machine.ip, machine.boot_mode, machine.boot_server_id],
      );
      return row!;
    },

    async machines(owner: string | undefined): Promise<MachineRow[]> {
      const { rows } = await pool.query<MachineRow>(`SELECT ${machineColumns} FROM pxe_machines WHERE ($1::uuid IS NULL OR owner_id = $1) ORDER BY name, id`, [owner ?? null]);
      return rows;
    },

    async machine(id: string, owner: string | undefined): Promise<MachineRow | undefined> {
      const { rows: [row] } = await pool.query<MachineRow>(`SELECT ${machineColumns} FROM pxe_machines WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)`, [id, owner ?? null]);
      return row;
    },

    /** The machine, its boot server's iSCSI settings, and its ACTIVE session's script if it has one. */
    async machineBoot(id: string, owner: string | undefined): Promise<MachineBootRow | undefined> {
      const { rows: [row] } = await pool.query<MachineBootRow>(
        `SELECT s.id AS session_id, s.boot_script, m.id, m.name, m.mac, m.ip, m.tid, b.id AS bs_id, b.target_driver, b.portal_ip, b.iqn_prefix, b.image_dir, b.tgt_control_port
           FROM pxe_machines m JOIN pxe_boot_servers b ON b.id = m.boot_server_id
           LEFT JOIN pxe_sessions s ON s.machine_id = m.id AND s.status = 'ACTIVE' AND s.boot_script IS NOT NULL
          WHERE m.id = $1 AND ($2::uuid IS NULL OR m.owner_id = $2)`,
        [id, owner ?? null],
      );
      return row;
    },

    /** The iPXE script of the ACTIVE session of the machine with this MAC. */
    async activeBootScript(mac: string): Promise<string | undefined> {
      const { rows: [row] } = await pool.query<{ session_id: string; machine_id: string; boot_script: string; mac: string }>(
        `SELECT s.id AS session_id, m.id AS machine_id, s.boot_script, m.mac
           FROM pxe_sessions s JOIN pxe_machines m ON m.id = s.machine_id
          WHERE m.mac = $1 AND s.status = 'ACTIVE' AND s.boot_script IS NOT NULL`,
        [mac],
      );
      return row?.boot_script;
    },

    async createImage(ownerId: string, image: Pick<ImageRow, 'boot_server_id' | 'name' | 'filename' | 'format'>): Promise<ImageRow> {
      const { rows: [row] } = await pool.query<ImageRow>(
        `INSERT INTO pxe_images (owner_id, boot_server_id, name, filename, format, status) VALUES ($1, $2, $3, $4, $5, 'PENDING') RETURNING ${imageColumns}`,
        [ownerId, image.boot_server_id, image.name, image.filename, image.format],
      );
      return row!;
    },

    async images(owner: string | undefined): Promise<ImageRow[]> {
      const { rows } = await pool.query<ImageRow>(`SELECT ${imageColumns} FROM pxe_images WHERE ($1::uuid IS NULL OR owner_id = $1) ORDER BY created_at DESC`, [owner ?? null]);
      return rows;
    },

    async image(id: string, owner: string | undefined): Promise<ImageRow | undefined> {
      const { rows: [row] } = await pool.query<ImageRow>(`SELECT ${imageColumns} FROM pxe_images WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)`, [id, owner ?? null]);
      return row;
    },

    async markImageConverting(id: string): Promise<void> {
      await pool.query(`UPDATE pxe_images SET status = 'CONVERTING', progress = 0, updated_at = now() WHERE id = $1`, [id]);
    },

    async setImageProgress(id: string, percent: number): Promise<void> {
      await pool.query('UPDATE pxe_images SET progress = $2, updated_at = now() WHERE id = $1', [id, percent]);
    },

    async markImageReady(id: string, rawFilename: string, sizeBytes: number): Promise<void> {
      await pool.query(
        `UPDATE pxe_images SET status = 'READY', raw_filename = $2, size_bytes = $3, progress = 100, error = NULL, updated_at = now() WHERE id = $1`,
        [id, rawFilename, sizeBytes],
      );
    },

    async markImageFailed(id: string, error: string): Promise<void> {
      await pool.query(`UPDATE pxe_images SET status = 'ERROR', error = $2, updated_at = now() WHERE id = $1`, [id, error]);
    },

    /** A STARTING session; fails with PostgreSQL's unique violation (23505) while the machine is busy. */
    async createSession(session: { ownerId: string; machineId: string; imageId: string; sessionType: string; description: string; workflowId: string }): Promise<SessionRow> {
      const { rows: [row] } = await pool.query<SessionRow>(
        `INSERT INTO pxe_sessions (owner_id, machine_id, image_id, session_type, description, status, workflow_id)
         VALUES ($1, $2, $3, $4, $5, 'STARTING', $6) RETURNING ${sessionColumns}`,
        [session.ownerId, session.machineId, session.imageId, session.sessionType, session.description, session.workflowId],
      );
      return row!;
    },

    async deleteSession(id: string): Promise<void> {
      await pool.query('DELETE FROM pxe_sessions WHERE id = $1', [id]);
    },

    async session(id: string, owner: string | undefined): Promise<SessionRow | undefined> {
      const { rows: [row] } = await pool.query<SessionRow>(`SELECT ${sessionColumns} FROM pxe_sessions WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)`, [id, owner ?? null]);
      return row;
    },

    /** One page of sessions, newest first, and how many there are in all. */
    async sessionsPage(filter: { status?: PxeSessionStatus; page: number; pageSize: number }, owner: string | undefined): Promise<{ rows: SessionRow[]; total: number }> {
      const args = [filter.status ?? null, owner ?? null];
      const where = '($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR owner_id = $2)';
      const [{ rows }, { rows: [count] }] = await Promise.all([
        pool.query<SessionRow>(`SELECT ${sessionColumns} FROM pxe_sessions WHERE ${where} ORDER BY created_at DESC, id LIMIT ${filter.pageSize} OFFSET ${(filter.page - 1) * filter.pageSize}`, args),
        pool.query<{ total: number }>(`SELECT count(*)::int AS total FROM pxe_sessions WHERE ${where}`, args),
      ]);
      return { rows, total: count?.total ?? 0 };
    },

    async sessionCountsByStatus(owner: string | undefined): Promise<{ status: string; count: number }[]> {
      const { rows } = await pool.query<{ status: string; count: number }>(`SELECT status, count(*)::int AS count FROM pxe_sessions WHERE ($1::uuid IS NULL OR owner_id = $1) GROUP BY status`, [owner ?? null]);
      return rows;
    },

    /** What the saga's first step validates and plans from: the session's machine and image. */
    async sessionSources(sessionId: string) {
      const { rows: [row] } = await pool.query<{
        machine_id: string | null; machine_name: string; mac: string; ip: string; tid: number; boot_server_id: string;
        image_status: string | null; image_name: string; raw_filename: string | null;
      }>(
        `SELECT m.id AS machine_id, m.name AS machine_name, m.mac, m.ip, m.tid, m.boot_server_id,
                i.status AS image_status, i.name AS image_name, i.raw_filename
           FROM pxe_sessions s
           LEFT JOIN pxe_machines m ON m.id = s.machine_id
           LEFT JOIN pxe_images i ON i.id = s.image_id
          WHERE s.id = $1`,
        [sessionId],
      );
      return row;
    },

    /** The machines that belong in a boot server's hosts file: one entry per MAC. */
    async dhcpEntries(bootServerId: string): Promise<DhcpHostEntry[]> {
      const { rows } = await pool.query<{ mac: string; ip: string; name: string }>(
        `SELECT DISTINCT ON (m.mac) m.mac, m.ip, m.name
           FROM pxe_sessions s JOIN pxe_machines m ON m.id = s.machine_id
          WHERE s.dhcp_entry AND m.boot_server_id = $1
          ORDER BY m.mac`,
        [bootServerId],
      );
      return rows.map((row) => ({ mac: row.mac, ip: row.ip, machineName: row.name }));
    },

    async setDhcpEntry(sessionId: string, wanted: boolean): Promise<void> {
      await pool.query('UPDATE pxe_sessions SET dhcp_entry = $2, updated_at = now() WHERE id = $1', [sessionId, wanted]);
    },

    async setSessionStatus(sessionId: string, status: PxeSessionStatus, extra: { error?: unknown; bootScript?: string | null } = {}): Promise<void> {
      await pool.query(
        `UPDATE pxe_sessions
            SET status = $2,
                error = COALESCE($3::jsonb, error),
                boot_script = CASE WHEN $4::boolean THEN $5 ELSE boot_script END,
                started_at = CASE WHEN $2 = 'ACTIVE' THEN COALESCE(started_at, now()) ELSE started_at END,
                stopped_at = CASE WHEN $2 IN ('STOPPED', 'FAILED') THEN COALESCE(stopped_at, now()) ELSE stopped_at END,
                updated_at = now()
          WHERE id = $1`,
        [sessionId, status, extra.error === undefined ? null : JSON.stringify(extra.error), extra.bootScript !== undefined, extra.bootScript ?? null],
      );
    },
  };
}

export type PxeStore = ReturnType<typeof createPxeStore>;
