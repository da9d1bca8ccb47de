import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { renderGenericBootScript } from '../../../domain/pxe/ipxe';
import { eventually, startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { startPxeLab, type PxeLab } from '../../helpers/pxeLab';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * The proof: a qemu VM (TCG, Debian's iPXE ROM) in a network namespace this test creates
 * sanboots a disk through a session started over the HTTP API — and no longer does once the
 * session is stopped. dhcpd, in.tftpd, tgtd and the VM live inside the namespace; the api,
 * worker and sshd stay on loopback, and files and tgtadm reach across (a path, a socket file).
 */
const ns = `sfpxe-${randomBytes(3).toString('hex')}`;
const subnet = `10.213.${40 + (randomBytes(1)[0]! % 200)}`;
const labAddress = `${subnet}.1`;
const vmIp = `${subnet}.50`;
const vmMac = `52:54:00:${randomBytes(3).toString('hex').match(/../g)!.join(':')}`;
const marker = 'SESSIONFLOW-SANBOOT-OK';
const exitByte = 0x10; // qemu exits with (byte << 1) | 1 on an isa-debug-exit write

let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let lab: PxeLab | undefined;
const netns = (...argv: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { stdio: 'pipe' });
const dhcpdPidFile = () => join(lab!.dir, 'dhcpd.pid');

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra);
  execFileSync('ip', ['netns', 'add', ns]);
  netns('ip', 'link', 'set', 'lo', 'up');
  netns('ip', 'link', 'add', 'br0', 'type', 'bridge');
  netns('ip', 'addr', 'add', `${labAddress}/24`, 'dev', 'br0');
  netns('ip', 'link', 'set', 'br0', 'up');
  netns('ip', 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  netns('ip', 'link', 'set', 'tap0', 'master', 'br0');
  netns('ip', 'link', 'set', 'tap0', 'up');

  lab = await startPxeLab(infra.pool, {
    netns: ns,
    labAddress,
    // dhcpd has no reload signal: restart it inside the namespace, fully detached from SSH.
    reloadCommand: ({ dir }) => [
      `pid=$(cat ${dir}/dhcpd.pid 2>/dev/null)`,
      `if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done; fi`,
      `ip netns exec ${ns} setsid dhcpd -4 -q -cf ${dir}/dhcpd.conf -lf ${dir}/dhcpd.leases -pf ${dir}/dhcpd.pid br0 </dev/null >>${dir}/dhcpd.log 2>&1`,
    ].join('; '),
  });
  writeFileSync(lab.hostsFile, '');
  writeFileSync(join(lab.dir, 'dhcpd.leases'), '');
  writeFileSync(join(lab.dir, 'dhcpd.conf'), [
    'authoritative;',
    'default-lease-time 600; max-lease-time 600;',
    'option client-arch code 93 = unsigned integer 16;',
    `subnet ${subnet}.0 netmask 255.255.255.0 {`,
    `  range ${subnet}.100 ${subnet}.150;`,
    `  next-server ${labAddress};`,
    '  if exists user-class and option user-class = "iPXE" { filename "boot.ipxe"; } else { filename "undionly.kpxe"; }',
    '}',
    `include "${lab.hostsFile}";`,
    '',
  ].join('\n'));
  writeFileSync(join(lab.tftpRoot, 'boot.ipxe'), renderGenericBootScript(), { mode: 0o644 });
  netns('setsid', 'dhcpd', '-4', '-q', '-cf', join(lab.dir, 'dhcpd.conf'), '-lf', join(lab.dir, 'dhcpd.leases'), '-pf', dhcpdPidFile(), 'br0');
  buildBootDisk(join(lab.imageDir, 'marker.img'));
}, 120_000);

afterAll(async () => {
  if (lab && existsSync(dhcpdPidFile())) spawnSync('kill', [readFileSync(dhcpdPidFile(), 'utf8').trim()]);
  await lab?.stop();
  spawnSync('ip', ['netns', 'del', ns]);
  await api?.stop();
  await infra?.close();
  await env?.teardown();
}, 60_000);

/** A boot sector that prints the marker on COM1 and exits qemu, padded past iPXE's 16065-sector minimum. */
function buildBootDisk(path: string): void {
  const source = `${path}.asm`;
  writeFileSync(source, [
    'bits 16', 'org 0x7c00',
    'cli', 'xor ax, ax', 'mov ds, ax', 'mov si, msg', 'mov dx, 0x3f8',
    'next: lodsb', 'test al, al', 'jz done', 'out dx, al', 'jmp next',
    `done: mov al, ${exitByte}`, 'out 0xf4, al',
    'hang: hlt', 'jmp hang',
    `msg: db '${marker}', 13, 10, 0`,
    'times 510-($-$$) db 0', 'dw 0xaa55', '',
  ].join('\n'));
  execFileSync('nasm', ['-f', 'bin', '-o', path, source]);
  execFileSync('truncate', ['-s', '8M', path]);
}

/** Boots the VM from the network until it exits by itself or `timeoutMs` passes; returns its serial output. */
async function bootVm(timeoutMs: number): Promise<{ serial: string; exitCode: number | null }> {
  const serialLog = join(lab!.dir, `serial-${Date.now()}.log`);
  const vm = spawn('ip', ['netns', 'exec', ns, 'qemu-system-x86_64',
    '-machine', 'pc,accel=tcg,graphics=off', '-display', 'none', '-m', '128', '-serial', `file:${serialLog}`,
    '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `virtio-net-pci,netdev=n0,mac=${vmMac}`,
    '-boot', 'order=n', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-no-reboot'], { stdio: 'ignore' });
  const exitCode = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      vm.kill('SIGKILL');
    }, timeoutMs);
    vm.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return { serial: existsSync(serialLog) ? readFileSync(serialLog, 'utf8') : '', exitCode };
}

const base = '/api/v1/pxe';
const user = () => ({ Authorization: `Bearer ${api.userKey}` });

it('sanboots a VM from the session started through the API, and no longer once the session is stopped', async () => {
  const image = await request(api.app).post(`${base}/images`).set(user()).send({ name: 'marker', filename: 'marker.img', format: 'raw', boot_server_id: lab!.bootServerId }).expect(202);
  await eventually(() => request(api.app).get(`${base}/images/${image.body.id}`).set(user()), (res) => res.body.status === 'READY', 180_000);
  const machine = await request(api.app).post(`${base}/machines`).set(user()).send({ name: 'vm', mac: vmMac.toUpperCase().replace(/:/g, '-'), ip: vmIp, boot_mode: 'bios', boot_server_id: lab!.bootServerId }).expect(201);
  const started = await request(api.app).post(`${base}/sessions/start`).set(user()).send({ machine_id: machine.body.id, image_id: image.body.id, session_type: 'DISKLESS_BOOT', description: 'e2e boot' }).expect(202);
  const active = await eventually(() => request(api.app).get(`${base}/sessions/${started.body.id}`).set(user()), (res) => res.body.status !== 'STARTING', 180_000);
  expect(active.body.status).toBe('ACTIVE');
  expect(readFileSync(lab!.hostsFile, 'utf8')).toContain(`hardware ethernet ${vmMac};`);

  const booted = await bootVm(180_000);
  expect(booted.serial).toContain(marker);
  expect(booted.exitCode).toBe((exitByte << 1) | 1);

  const stopped = await request(api.app).post(`${base}/sessions/${started.body.id}/stop`).set(user()).expect(200);
  expect(stopped.body.status).toBe('STOPPED');
  expect(readFileSync(lab!.hostsFile, 'utf8')).not.toContain(vmMac);

  // Without a session the VM finds no script and no target: it never exits by itself.
  const after = await bootVm(45_000);
  expect(after.serial).not.toContain(marker);
  expect(after.exitCode).not.toBe((exitByte << 1) | 1);
}, 600_000);
