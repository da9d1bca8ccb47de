import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { startSshServer, type SshServer } from './sshd';

/**
 * A boot server made of real Debian software on this machine, reached over a real sshd on
 * loopback: tgtd on a control port of its own (so it never meets another test's tgtd),
 * in.tftpd on a loopback port serving the lab's TFTP root, dhcpd's own `-t` checks. No
 * dhcpd answers anywhere here: the reload command only counts restarts (the e2e test runs a
 * real dhcpd inside a network namespace).
 */
export interface PxeLab {
  dir: string;
  sshd: SshServer;
  tgtControlPort: number;
  tftpRoot: string;
  tftpPort: number;
  imageDir: string;
  hostsFile: string;
  bootServerId: string;
  bootServerName: string;
  /** How many times the reload command ran. */
  restarts(): number;
  tgtadm(...args: string[]): string;
  /** tgtd's targets as `tgtadm --op show` prints them. */
  targets(): string;
  tftpGet(remote: string): string | undefined;
  stop(): Promise<void>;
}

export interface PxeLabOptions {
  /** Replace the reload command (the e2e lab restarts a real dhcpd). */
  reloadCommand?: (lab: { dir: string; hostsFile: string }) => string;
  withTftpd?: boolean;
  /** A network namespace the caller created: tgtd and in.tftpd run inside it. */
  netns?: string;
  /** The address inside `netns` that tgtd (port 3260) and in.tftpd (port 69) listen on. */
  labAddress?: string;
}

export async function startPxeLab(pool: Pool, options: PxeLabOptions = {}): Promise<PxeLab> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-pxe-lab-'));
  const tftpRoot = join(dir, 'tftp');
  const imageDir = join(dir, 'images');
  const hostsFile = join(dir, 'dhcp', 'hosts.conf');
  for (const d of [tftpRoot, imageDir, join(dir, 'dhcp')]) mkdirSync(d, { recursive: true });
  const restartsFile = join(dir, 'dhcpd-restarts');
  const children: ChildProcess[] = [];

  const sshd = await startSshServer();
  // tgtd accepts control ports up to 32767; its iSCSI portal stays on loopback.
  const tgtControlPort = randomInt(1_000, 32_000);
  const inNetns = (argv: string[]) => (options.netns ? ['ip', 'netns', 'exec', options.netns, ...argv] : argv);
  const spawnIn = (argv: string[]) => spawn(inNetns(argv)[0]!, inNetns(argv).slice(1), { stdio: 'ignore' });
  const portalIp = options.labAddress ?? '127.0.0.1';
  const portal = options.labAddress ? `${options.labAddress}:3260` : `127.0.0.1:${await freeTcpPort()}`;
  const tgtd = spawnIn(['tgtd', '-f', '-C', String(tgtControlPort), '--iscsi', `portal=${portal}`]);
  children.push(tgtd);
  const tgtadm = (...args: string[]) => execFileSync('tgtadm', ['-C', String(tgtControlPort), ...args], { encoding: 'utf8', stdio: 'pipe' });
  await waitUntil(() => {
    try {
      tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show');
      return true;
    } catch {
      return false;
    }
  }, 'tgtd');

  let tftpPort = 0;
  if (options.withTftpd !== false) {
    tftpPort = options.labAddress ? 69 : await freeUdpPort();
    children.push(spawnIn(['in.tftpd', '--foreground', '--listen', '--address', `${portalIp}:${tftpPort}`, '--secure', tftpRoot]));
  }

  const bootServerName = `lab-${randomUUID().slice(0, 8)}`;
  const reloadCommand = options.reloadCommand?.({ dir, hostsFile }) ?? `echo restart >> ${restartsFile}`;
  const { rows: [row] } = await pool.query<{ id: string }>(
    `INSERT INTO pxe_boot_servers (name, ssh_host, ssh_port, ssh_user, ssh_private_key, tftp_root, dhcp_hosts_file, dhcp_reload_command, dhcp_service_check,
       tftp_service_check, target_driver, tgt_control_port, portal_ip, iqn_prefix, image_dir)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'tgt', $11, $12, 'iqn.2025-01.dev.sessionflow', $13) RETURNING id`,
    [bootServerName, sshd.host, sshd.port, sshd.username, sshd.privateKey, tftpRoot, hostsFile, reloadCommand, `test -f ${restartsFile}`,
      tftpPort ? `pgrep -f 'in.tftpd.*${portalIp}:${tftpPort}'` : 'false', tgtControlPort, portalIp, imageDir],
  );

  return {
    dir, sshd, tgtControlPort, tftpRoot, tftpPort, imageDir, hostsFile, bootServerId: row!.id, bootServerName,
    restarts: () => (existsSync(restartsFile) ? readFileSync(restartsFile, 'utf8').split('\n').filter(Boolean).length : 0),
    tgtadm,
    targets: () => tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show'),
    tftpGet(remote: string) {
      const local = join(dir, `fetched-${randomUUID()}`);
      try {
        // tftp-hpa exits 0 even when the server refuses; it says so on its output.
        const run = spawnSync('tftp', ['-m', 'binary', '127.0.0.1', String(tftpPort), '-c', 'get', remote, local], { encoding: 'utf8', timeout: 10_000 });
        if (run.status !== 0 || /error|timed out/i.test(`${run.stdout}${run.stderr}`)) return undefined;
        return existsSync(local) ? readFileSync(local, 'utf8') : undefined;
      } finally {
        rmSync(local, { force: true });
      }
    },
    async stop() {
      try {
        tgtadm('--op', 'delete', '--mode', 'system');
      } catch {
        // already gone
      }
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
          child.kill('SIGKILL');
        }
      }
      await sshd.stop();
      await pool.query('DELETE FROM pxe_sessions WHERE machine_id IN (SELECT id FROM pxe_machines WHERE boot_server_id = $1)', [row!.id]);
      await pool.query('DELETE FROM pxe_images WHERE boot_server_id = $1', [row!.id]);
      await pool.query('DELETE FROM pxe_machines WHERE boot_server_id = $1', [row!.id]);
      await pool.query('DELETE FROM pxe_boot_servers WHERE id = $1', [row!.id]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A sparse raw image file of `bytes` in the lab's image directory. */
export function writeRawImage(lab: PxeLab, filename: string, bytes = 8 * 1024 * 1024, content?: Buffer): string {
  const path = join(lab.imageDir, filename);
  writeFileSync(path, content ?? Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(bytes), path]);
  return path;
}

/** A user, a READY raw image and `count` machines on the lab's boot server, straight into the database. */
export async function seedPxeFixtures(pool: Pool, lab: PxeLab, ownerId: string, count: number, filename = 'disk.img') {
  if (!existsSync(join(lab.imageDir, filename))) writeRawImage(lab, filename);
  const { rows: [image] } = await pool.query<{ id: string }>(
    `INSERT INTO pxe_images (owner_id, boot_server_id, name, filename, format, status, raw_filename, size_bytes, progress)
     VALUES ($1, $2, $3, $4, 'raw', 'READY', $4, 8388608, 100) RETURNING id`,
    [ownerId, lab.bootServerId, `image-${randomUUID().slice(0, 6)}`, filename],
  );
  const machines: { id: string; mac: string; ip: string }[] = [];
  for (let i = 0; i < count; i++) {
    const mac = randomMac();
    const ip = `10.${randomInt(0, 255)}.${randomInt(0, 255)}.${randomInt(1, 254)}`;
    const { rows: [machine] } = await pool.query<{ id: string }>(
      `INSERT INTO pxe_machines (owner_id, name, mac, ip, boot_mode, boot_server_id) VALUES ($1, $2, $3, $4, 'bios', $5) RETURNING id`,
      [ownerId, `machine-${i}-${mac.slice(-5)}`, mac, ip, lab.bootServerId],
    );
    machines.push({ id: machine!.id, mac, ip });
  }
  return { imageId: image!.id, machines };
}

/** A session row as the api inserts it before starting the workflow. */
export async function insertSessionRow(pool: Pool, ownerId: string, machineId: string, imageId: string): Promise<string> {
  const { rows: [row] } = await pool.query<{ id: string }>(
    `INSERT INTO pxe_sessions (owner_id, machine_id, image_id, session_type, status, workflow_id) VALUES ($1, $2, $3, 'DISKLESS_BOOT', 'STARTING', $4) RETURNING id`,
    [ownerId, machineId, imageId, `pxe/${machineId}`],
  );
  return row!.id;
}

export function randomMac(): string {
  // 52:54:00 is qemu's locally administered prefix: never a real NIC's.
  return ['52', '54', '00', ...Array.from({ length: 3 }, () => randomInt(0, 256).toString(16).padStart(2, '0'))].join(':');
}

async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

export async function waitUntil(probe: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
