import type { Pool } from 'pg';
import type { DhcpHostEntry } from '../../domain/pxe/dhcpHosts';
import type { TargetDriverName } from '../../domain/pxe/iscsiTarget';
import type { PxeSessionStatus } from '../../domain/pxe/pxe';
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

interface BootServerRow {
  id: string; name: string; ssh_host: string; ssh_port: number; ssh_user: string; ssh_private_key: string;
  tftp_root: string; dhcp_hosts_file: string; dhcp_reload_command: string; dhcp_service_check: string; tftp_service_check: string;
  target_driver: TargetDriverName; tgt_control_port: number | null; portal_ip: string; iqn_prefix: string; image_dir: string;
}

/** PostgreSQL reads and writes of the PXE activities (the read model the api lists from). */
export function createPxeStore(pool: Pool) {
  return {
    async bootServer(id: string): Promise<BootServer | undefined> {
      const { rows: [row] } = await pool.query<BootServerRow>('SELECT * FROM pxe_boot_servers WHERE id = $1', [id]);
      return row && {
        id: row.id, name: row.name,
        ssh: { host: row.ssh_host, port: row.ssh_port, username: row.ssh_user, privateKey: row.ssh_private_key },
        tftpRoot: row.tftp_root, dhcpHostsFile: row.dhcp_hosts_file, dhcpReloadCommand: row.dhcp_reload_command,
        dhcpServiceCheck: row.dhcp_service_check, tftpServiceCheck: row.tftp_service_check,
        targetDriver: row.target_driver, tgtControlPort: row.tgt_control_port, portalIp: row.portal_ip, iqnPrefix: row.iqn_prefix, imageDir: row.image_dir,
      };
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
