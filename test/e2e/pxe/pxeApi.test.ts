import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { MachineMac, SessionDetail, SessionKind, SessionStatus } from '../../../domain/shared/searchAttributes';
import { eventually, startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { randomMac, startPxeLab, writeRawImage, type PxeLab } from '../../helpers/pxeLab';
import { connectTestEnv } from '../../helpers/temporal';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let lab: PxeLab;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra);
  lab = await startPxeLab(infra.pool);
}, 60_000);
afterAll(async () => {
  await api?.stop();
  await lab?.stop();
  await infra.close();
  await env.teardown();
});

const base = '/api/v1/pxe';
const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(api.userKey);
let ipCounter = 1;
const nextIp = () => `10.77.${Math.floor(ipCounter / 250)}.${(ipCounter++ % 250) + 1}`;

async function machine(mac = randomMac()) {
  const res = await request(api.app).post(`${base}/machines`).set(user()).send({ name: `ws-${mac.slice(-5)}`, mac, ip: nextIp(), boot_mode: 'bios', boot_server_id: lab.bootServerId }).expect(201);
  return res.body as { id: string; mac: string; ip: string };
}

async function readyImage(filename = 'api-disk.img', format = 'raw') {
  const started = await request(api.app).post(`${base}/images`).set(user()).send({ name: filename, filename, format, boot_server_id: lab.bootServerId }).expect(202);
  const done = await eventually(() => request(api.app).get(`${base}/images/${started.body.id}`).set(user()), (res) => ['READY', 'ERROR'].includes(res.body.status), 180_000);
  return done.body as { id: string; status: string; error: string | null; size_bytes: number; progress: number };
}

async function settle(id: string) {
  return eventually(() => request(api.app).get(`${base}/sessions/${id}`).set(user()), (res) => res.body.status !== 'STARTING', 180_000);
}

describe('boot servers (admin)', () => {
  it('hides the SSH key and refuses non-admins', async () => {
    const res = await request(api.app).get(`${base}/boot-servers/${lab.bootServerId}`).set(as(api.adminKey)).expect(200);
    expect(res.body).toMatchObject({ id: lab.bootServerId, target_driver: 'tgt', ssh: { host: '127.0.0.1', port: lab.sshd.port } });
    expect(JSON.stringify(res.body)).not.toContain('PRIVATE KEY');
    await request(api.app).get(`${base}/boot-servers`).set(user()).expect(403);
  });

  it('reports DHCP and TFTP adapter status probed over SSH', async () => {
    const res = await request(api.app).get(`${base}/boot-servers/${lab.bootServerId}/status`).set(as(api.adminKey)).expect(200);
    expect(res.body).toMatchObject({
      dhcp: { config_valid: expect.any(Boolean), host_entries: expect.any(Number), service_running: expect.any(Boolean) },
      tftp: { service_running: true, root_present: true, script_count: expect.any(Number) },
    });
  });

  it('reports services down, config and TFTP root missing on a boot server where nothing runs', async () => {
    const created = await request(api.app).post(`${base}/boot-servers`).set(as(api.adminKey)).send({
      name: `empty-${Date.now()}`, ssh: { host: lab.sshd.host, port: lab.sshd.port, user: lab.sshd.username, key: lab.sshd.privateKey },
      tftp_root: `${lab.dir}/no-tftp`, dhcp_hosts_file: `${lab.dir}/no-dhcp/hosts.conf`, dhcp_reload_command: 'true',
      dhcp_service_check: 'false', tftp_service_check: 'false', target_driver: 'targetcli', portal_ip: '127.0.0.1', iqn_prefix: 'iqn.2025-01.dev.sessionflow', image_dir: `${lab.dir}/no-images`,
    }).expect(201);
    expect(created.body.ssh).toEqual({ host: lab.sshd.host, port: lab.sshd.port, user: lab.sshd.username, host_key: null });
    const res = await request(api.app).get(`${base}/boot-servers/${created.body.id}/status`).set(as(api.adminKey)).expect(200);
    expect(res.body).toEqual({
      dhcp: { service_running: false, config_present: false, config_valid: false, host_entries: 0, detail: '' },
      tftp: { service_running: false, root_present: false, script_count: 0 },
    });
    await infra.pool.query('DELETE FROM pxe_boot_servers WHERE id = $1', [created.body.id]);
  });

  it('pins the SSH host key on the first connection, and then refuses a server presenting another, before logging in', async () => {
    const settings = (name: string, hostKey?: string) => ({
      name, ssh: { host: lab.sshd.host, port: lab.sshd.port, user: lab.sshd.username, key: lab.sshd.privateKey, ...(hostKey ? { host_key: hostKey } : {}) },
      tftp_root: lab.tftpRoot, dhcp_hosts_file: lab.hostsFile, dhcp_reload_command: 'true', target_driver: 'tgt', portal_ip: '127.0.0.1', iqn_prefix: 'iqn.2025-01.dev.sessionflow', image_dir: lab.imageDir,
    });
    const trusting = await request(api.app).post(`${base}/boot-servers`).set(as(api.adminKey)).send(settings(`tofu-${Date.now()}`)).expect(201);
    expect(trusting.body.ssh.host_key).toBeNull();
    await request(api.app).get(`${base}/boot-servers/${trusting.body.id}/status`).set(as(api.adminKey)).expect(200);
    const pinned = await request(api.app).get(`${base}/boot-servers/${trusting.body.id}`).set(as(api.adminKey)).expect(200);
    expect(pinned.body.ssh.host_key).toEqual({ fingerprint: lab.sshd.hostKeyFingerprint(), algorithm: 'ssh-ed25519', source: 'first_use', pinned_at: expect.stringMatching(/Z$/) });

    // Pinned by the admin to another key: the server at that address is not the one meant.
    const otherKey = `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`;
    const wrong = await request(api.app).post(`${base}/boot-servers`).set(as(api.adminKey)).send(settings(`pinned-${Date.now()}`, otherKey)).expect(201);
    expect(wrong.body.ssh.host_key).toMatchObject({ fingerprint: otherKey, algorithm: null, source: 'admin' });
    const logins = lab.sshd.logins();
    const refused = await request(api.app).get(`${base}/boot-servers/${wrong.body.id}/status`).set(as(api.adminKey)).expect(502);
    expect(refused.body).toMatchObject({ code: 'HostKeyMismatch', boot_server_id: wrong.body.id, pinned_fingerprint: otherKey, presented_fingerprint: lab.sshd.hostKeyFingerprint() });
    const image = await request(api.app).post(`${base}/images`).set(user()).send({ name: 'refused', filename: 'api-disk.img', format: 'raw', boot_server_id: wrong.body.id }).expect(202);
    const failed = await eventually(() => request(api.app).get(`${base}/images/${image.body.id}`).set(user()), (res) => res.body.status === 'ERROR', 60_000);
    expect(failed.body.error).toMatch(/not the pinned/);
    expect(lab.sshd.logins()).toBe(logins);

    // The admin pins the right key: the server answers again.
    const repinned = await request(api.app).put(`${base}/boot-servers/${wrong.body.id}/host-key`).set(as(api.adminKey)).send({ host_key: lab.sshd.hostPublicKey }).expect(200);
    expect(repinned.body.ssh.host_key).toMatchObject({ fingerprint: lab.sshd.hostKeyFingerprint(), algorithm: 'ssh-ed25519', source: 'admin' });
    await request(api.app).get(`${base}/boot-servers/${wrong.body.id}/status`).set(as(api.adminKey)).expect(200);
    await request(api.app).put(`${base}/boot-servers/${wrong.body.id}/host-key`).set(as(api.adminKey)).send({ host_key: 'nope' }).expect(400);
    await infra.pool.query('DELETE FROM pxe_images WHERE boot_server_id = ANY($1)', [[trusting.body.id, wrong.body.id]]);
    await infra.pool.query('DELETE FROM pxe_boot_servers WHERE id = ANY($1)', [[trusting.body.id, wrong.body.id]]);
  });

  it('rejects a boot server with a bad driver or a relative path, with the fields', async () => {
    const res = await request(api.app).post(`${base}/boot-servers`).set(as(api.adminKey)).send({
      name: 'bad', ssh: { host: 'h', user: 'u', key: 'k' }, tftp_root: 'relative', dhcp_hosts_file: '/x', dhcp_reload_command: 'true',
      target_driver: 'iet', portal_ip: '10.0.0.1', iqn_prefix: 'iqn.2025-01.x', image_dir: '/x',
    }).expect(400);
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['body.target_driver', 'body.tftp_root']);
  });
});

describe('machines', () => {
  it('accepts a MAC in any common notation and stores it normalised', async () => {
    const created = await machine('52-54-00-AB-CD-01');
    expect(created.mac).toBe('52:54:00:ab:cd:01');
  });

  it('answers 400 with the field for a bad MAC or IP, and 409 for a MAC already taken', async () => {
    const bad = await request(api.app).post(`${base}/machines`).set(user()).send({ name: 'x', mac: '52:54:00:zz:00:01', ip: '300.1.1.1', boot_server_id: lab.bootServerId }).expect(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['body.ip', 'body.mac']);
    const taken = await machine();
    const dup = await request(api.app).post(`${base}/machines`).set(user()).send({ name: 'dup', mac: taken.mac.toUpperCase(), ip: nextIp(), boot_server_id: lab.bootServerId }).expect(409);
    expect(dup.body).toMatchObject({ code: 'MachineAddressTaken', field: 'mac' });
  });
});

describe('images', () => {
  it('registers a raw image as READY with its size', async () => {
    writeRawImage(lab, 'api-disk.img');
    expect(await readyImage('api-disk.img')).toMatchObject({ status: 'READY', size_bytes: 8 * 1024 * 1024, progress: 100 });
  });

  it('converts a qcow2 image to raw with qemu-img', async () => {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(lab.imageDir, 'small.qcow2'), '16M']);
    const image = await readyImage('small.qcow2', 'qcow2');
    expect(image).toMatchObject({ status: 'READY', size_bytes: 16 * 1024 * 1024 });
  });

  it('ends ERROR with the cause when the file is not on the boot server', async () => {
    const image = await readyImage('missing.img');
    expect(image.status).toBe('ERROR');
    expect(image.error).toContain('missing.img');
  });
});

describe('sessions', () => {
  let imageId: string;
  beforeAll(async () => {
    writeRawImage(lab, 'api-disk.img');
    imageId = (await readyImage('api-disk.img')).id;
  });

  it('answers 400 MachineNotFound for an unknown machine and 400 ImageNotReady for an image that is not READY', async () => {
    const unknown = await request(api.app).post(`${base}/sessions/start`).set(user()).send({ machine_id: '00000000-0000-4000-8000-000000000000', image_id: imageId, session_type: 'DISKLESS_BOOT' }).expect(400);
    expect(unknown.body.code).toBe('MachineNotFound');
    const broken = await readyImage('missing.img');
    const m = await machine();
    const notReady = await request(api.app).post(`${base}/sessions/start`).set(user()).send({ machine_id: m.id, image_id: broken.id, session_type: 'DISKLESS_BOOT' }).expect(400);
    expect(notReady.body).toMatchObject({ code: 'ImageNotReady', image_status: 'ERROR' });
  });

  it('fails a session start by name when the boot server presents another key than the pinned one, running nothing there', async () => {
    const m = await machine();
    const otherKey = `SHA256:${Buffer.alloc(32, 9).toString('base64').replace(/=+$/, '')}`;
    await request(api.app).put(`${base}/boot-servers/${lab.bootServerId}/host-key`).set(as(api.adminKey)).send({ host_key: otherKey }).expect(200);
    try {
      const logins = lab.sshd.logins();
      const started = await request(api.app).post(`${base}/sessions/start`).set(user()).send({ machine_id: m.id, image_id: imageId, session_type: 'DISKLESS_BOOT', description: 'impostor' }).expect(202);
      const failed = (await settle(started.body.id)).body;
      expect(failed).toMatchObject({ status: 'FAILED', error: { type: 'HostKeyMismatch', step: 'disk' } });
      expect(failed.error.message).toContain(lab.sshd.hostKeyFingerprint());
      expect(lab.sshd.logins()).toBe(logins);
    } finally {
      await request(api.app).put(`${base}/boot-servers/${lab.bootServerId}/host-key`).set(as(api.adminKey)).send({ host_key: lab.sshd.hostPublicKey }).expect(200);
    }
  });

  it('starts a session to ACTIVE, serves its boot script (API and /boot/:mac), refuses a second one with 409, and stops idempotently', async () => {
    const m = await machine();
    const started = await request(api.app).post(`${base}/sessions/start`).set(user()).send({ machine_id: m.id, image_id: imageId, session_type: 'DISKLESS_BOOT', description: 'api test' }).expect(202);
    expect(started.body).toMatchObject({ status: 'STARTING', workflow_id: `pxe/${m.id}`, machine_id: m.id });
    const busy = await request(api.app).post(`${base}/sessions/start`).set(user()).send({ machine_id: m.id, image_id: imageId }).expect(409);
    expect(busy.body.code).toBe('MachineBusy');

    expect((await settle(started.body.id)).body.status).toBe('ACTIVE');
    // The row turns ACTIVE first; the workflow upserts its search attribute right after.
    const described = await eventually(() => env.client.workflow.getHandle(`pxe/${m.id}`).describe(), (d) => d.typedSearchAttributes.get(SessionDetail) === 'ACTIVE');
    expect(described.typedSearchAttributes.get(SessionKind)).toBe('pxe');
    expect(described.typedSearchAttributes.get(MachineMac)).toBe(m.mac);
    expect(described.typedSearchAttributes.get(SessionStatus)).toBe('RUNNING');
    const script = await request(api.app).get(`${base}/machines/${m.id}/boot-script`).set(user()).expect(200);
    expect(script.body).toMatchObject({ session_id: started.body.id, filename: `machines/${m.mac.replace(/:/g, '-')}.ipxe`, iscsi: { portal: '127.0.0.1', lun: 1 } });
    expect(script.body.script).toContain(`sanboot iscsi:127.0.0.1:::1:${script.body.iscsi.target_iqn}`);
    const byMac = await request(api.app).get(`${base}/boot/${m.mac.replace(/:/g, '-').toUpperCase()}`).expect(200);
    expect(byMac.type).toBe('text/plain');
    expect(byMac.text).toBe(script.body.script);

    const stopped = await request(api.app).post(`${base}/sessions/${started.body.id}/stop`).set(user()).expect(200);
    expect(stopped.body).toMatchObject({ status: 'STOPPED', stopped_at: expect.any(String) });
    const again = await request(api.app).post(`${base}/sessions/${started.body.id}/stop`).set(user()).expect(200);
    expect(again.body.status).toBe('STOPPED');
    await request(api.app).get(`${base}/machines/${m.id}/boot-script`).set(user()).expect(404);
    await request(api.app).get(`${base}/boot/${m.mac}`).expect(404);
    // Another user's session is not there for them.
    await request(api.app).get(`${base}/sessions/${started.body.id}`).set(as(api.adminKey)).expect(200);
  });

  it('lists sessions with pagination and a status filter, and counts them per status', async () => {
    const machines = [await machine(), await machine(), await machine()];
    const ids: string[] = [];
    for (const m of machines) {
      ids.push((await request(api.app).post(`${base}/sessions/start`).set(user()).send({ machine_id: m.id, image_id: imageId }).expect(202)).body.id);
    }
    for (const id of ids) await settle(id);
    await request(api.app).post(`${base}/sessions/${ids[0]}/stop`).set(user()).expect(200);

    const page1 = await request(api.app).get(`${base}/sessions?page=1&page_size=2`).set(user()).expect(200);
    const page2 = await request(api.app).get(`${base}/sessions?page=2&page_size=2`).set(user()).expect(200);
    expect(page1.body.items).toHaveLength(2);
    expect(page1.body.total).toBe(page2.body.total);
    expect(page1.body.items.map((s: { id: string }) => s.id)).not.toContain(page2.body.items[0]?.id);
    const active = await request(api.app).get(`${base}/sessions?status=ACTIVE&page_size=200`).set(user()).expect(200);
    expect(active.body.items.every((s: { status: string }) => s.status === 'ACTIVE')).toBe(true);
    expect(active.body.items.map((s: { id: string }) => s.id)).toEqual(expect.arrayContaining(ids.slice(1)));
    await request(api.app).get(`${base}/sessions?status=BOGUS`).set(user()).expect(400);

    const stats = await request(api.app).get(`${base}/sessions/stats`).set(user()).expect(200);
    expect(stats.body.active).toBe(active.body.total);
    expect(stats.body.by_status.ACTIVE).toBe(active.body.total);
    expect(stats.body.total).toBe(Object.values(stats.body.by_status as Record<string, number>).reduce((a, b) => a + b, 0));
    expect(stats.body.total).toBe(page1.body.total);

    const status = await request(api.app).get(`${base}/boot-servers/${lab.bootServerId}/status`).set(as(api.adminKey)).expect(200);
    expect(status.body.dhcp).toMatchObject({ config_valid: true, config_present: true, host_entries: active.body.total, service_running: true });
    expect(status.body.tftp.script_count).toBe(active.body.total);
    for (const id of ids.slice(1)) await request(api.app).post(`${base}/sessions/${id}/stop`).set(user()).expect(200);
  });
});
