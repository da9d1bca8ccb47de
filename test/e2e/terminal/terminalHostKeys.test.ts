import type { TestWorkflowEnvironment } from '@temporalio/testing';
import request from 'supertest';
import { createUserKey } from '../../../api/platform/auth';
import { hostKeyRefusedCloseCode } from '../../../domain/terminal/terminal';
import { listenWithBridge, startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { startSshImpostor, type SshImpostor } from '../../helpers/sshFaults';
import { startSshServer, type SshServer } from '../../helpers/sshd';
import { connectTestEnv } from '../../helpers/temporal';
import { bearer, TerminalClient, testCredentialsKey } from '../../helpers/terminal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let sshd: SshServer;
let impostor: SshImpostor;
let api: ApiHarness;
let strict: ApiHarness;
let server: { baseUrl: string; close(): Promise<void> };
const credentialsKey = testCredentialsKey();
const unique = () => `hk-${Math.random().toString(36).slice(2, 10)}`;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  sshd = await startSshServer();
  impostor = await startSshImpostor();
  api = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_MAX_ACTIVE_SESSIONS: 50 });
  strict = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, SSH_TRUST_ON_FIRST_USE: false });
  server = await listenWithBridge(api.app);
});
afterAll(async () => {
  await server.close();
  await Promise.all([api.stop(), strict.stop()]);
  await Promise.all([sshd.stop(), impostor.stop()]);
  await infra.close();
  await env.teardown();
});

const keyAuth = () => ({ type: 'private_key', private_key: sshd.privateKey });
const register = (harness: ApiHarness, body: Record<string, unknown>) =>
  request(harness.app).post('/api/v1/admin/hosts').set(bearer(harness.adminKey)).send({ name: unique(), address: '127.0.0.1', port: sshd.port, username: sshd.username, auth: keyAuth(), ...body });
const hostRow = async (id: string) => (await request(api.app).get(`/api/v1/admin/hosts/${id}`).set(bearer(api.adminKey)).expect(200)).body;
/** As a row registered before host keys were pinned: none. */
const forgetPin = (id: string) =>
  infra.pool.query('UPDATE terminal_hosts SET host_key_fingerprint = NULL, host_key_algorithm = NULL, host_key_source = NULL, host_key_pinned_at = NULL WHERE id = $1', [id]);

async function openTerminal(harness: ApiHarness, hostId: string, expected = 201): Promise<{ id: string; token: string; key: string; body: Record<string, unknown> }> {
  const { key } = await createUserKey(infra.pool, unique(), 'user', 'test');
  const res = await request(harness.app).post('/api/v1/terminals').set(bearer(key)).send({ host_id: hostId }).expect(expected);
  return { id: res.body.session_id, token: res.body.token, key, body: res.body };
}

describe('registering a host', () => {
  it('pins the key the host presents (trust on first use) and shows it, as ssh-keygen prints it, without logging in', async () => {
    const before = sshd.logins();
    const created = await register(api, {}).expect(201);
    expect(created.body.host_key).toEqual({ fingerprint: sshd.hostKeyFingerprint(), algorithm: 'ssh-ed25519', source: 'first_use', pinned_at: expect.stringMatching(/Z$/) });
    expect(sshd.logins()).toBe(before);
    expect((await hostRow(created.body.id)).host_key).toEqual(created.body.host_key);
  });

  it('pins the key an admin gives, as a fingerprint or a public key line, and names the field when it is neither', async () => {
    const byFingerprint = await register(api, { host_key: sshd.hostKeyFingerprint() }).expect(201);
    expect(byFingerprint.body.host_key).toMatchObject({ fingerprint: sshd.hostKeyFingerprint(), algorithm: null, source: 'admin' });
    const byKeyLine = await register(api, { host_key: `127.0.0.1 ${sshd.hostPublicKey}` }).expect(201);
    expect(byKeyLine.body.host_key).toMatchObject({ fingerprint: sshd.hostKeyFingerprint(), algorithm: 'ssh-ed25519', source: 'admin' });
    const bad = await register(api, { host_key: 'SHA256:not-a-fingerprint' }).expect(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field)).toEqual(['body.host_key']);
  });

  it('answers 502 HostUnreachable for a host that does not answer, and registers nothing', async () => {
    const name = unique();
    const res = await register(api, { name, port: 1 }).expect(502);
    expect(res.body).toMatchObject({ code: 'HostUnreachable', address: '127.0.0.1', port: 1 });
    const listed = await request(api.app).get('/api/v1/admin/hosts').set(bearer(api.adminKey)).expect(200);
    expect(listed.body.hosts.map((h: { name: string }) => h.name)).not.toContain(name);
  });

  it('pins again when the address or port changes, unless a key comes with the change', async () => {
    const created = await register(api, {}).expect(201);
    const moved = await request(api.app).patch(`/api/v1/admin/hosts/${created.body.id}`).set(bearer(api.adminKey)).send({ port: impostor.port }).expect(200);
    expect(moved.body.host_key).toMatchObject({ source: 'first_use', algorithm: 'ssh-ed25519' });
    expect(moved.body.host_key.fingerprint).not.toBe(sshd.hostKeyFingerprint());
    const back = await request(api.app).patch(`/api/v1/admin/hosts/${created.body.id}`).set(bearer(api.adminKey)).send({ port: sshd.port, host_key: sshd.hostPublicKey }).expect(200);
    expect(back.body.host_key).toMatchObject({ fingerprint: sshd.hostKeyFingerprint(), source: 'admin' });
    expect(impostor.attempts).toEqual([]);
  });

  it('with SSH_TRUST_ON_FIRST_USE=false, needs the key from the admin', async () => {
    const res = await register(strict, {}).expect(400);
    expect(res.body.errors).toEqual([{ field: 'body.host_key', message: expect.stringMatching(/SSH_TRUST_ON_FIRST_USE/) }]);
    await register(strict, { host_key: sshd.hostKeyFingerprint() }).expect(201);
  });
});

describe('connecting to a host', () => {
  it('never sends a password to a host presenting another key than the pinned one', async () => {
    const created = await register(api, { port: impostor.port, auth: { type: 'password', password: 'hunter2-never-sent' }, host_key: sshd.hostKeyFingerprint() }).expect(201);
    const session = await openTerminal(api, created.body.id);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token);
    const closed = await term.closed;
    expect(closed.code).toBe(hostKeyRefusedCloseCode);
    expect(closed.reason).toMatch(/^HostKeyMismatch: the host presented SHA256:/);
    // The impostor was dialled, and was offered nothing at all.
    expect(impostor.connections()).toBeGreaterThan(0);
    expect(impostor.attempts).toEqual([]);
  });

  it('refuses a password host without a pinned key (a row from before pinning) with 409 HostKeyUnverified, until an admin pins it', async () => {
    const created = await register(api, { auth: { type: 'password', password: 'hunter2-never-sent' }, host_key: sshd.hostKeyFingerprint() }).expect(201);
    await forgetPin(created.body.id);
    const refused = await openTerminal(api, created.body.id, 409);
    expect(refused.body).toMatchObject({ code: 'HostKeyUnverified', host_id: created.body.id });
    await request(api.app).patch(`/api/v1/admin/hosts/${created.body.id}`).set(bearer(api.adminKey)).send({ host_key: sshd.hostKeyFingerprint() }).expect(200);
    await openTerminal(api, created.body.id, 201);
  });

  it('pins the key of an unpinned key host on its next connection, and shows it', async () => {
    const created = await register(api, {}).expect(201);
    await forgetPin(created.body.id);
    const session = await openTerminal(api, created.body.id);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token);
    await term.ready;
    term.type('echo pinned-$((6*7))\n');
    await term.waitFor(/pinned-42/);
    term.ws.close();
    expect((await hostRow(created.body.id)).host_key).toMatchObject({ fingerprint: sshd.hostKeyFingerprint(), algorithm: 'ssh-ed25519', source: 'first_use' });
  });

  it('with SSH_TRUST_ON_FIRST_USE=false, refuses an unpinned key host too', async () => {
    const created = await register(strict, { host_key: sshd.hostKeyFingerprint() }).expect(201);
    await forgetPin(created.body.id);
    expect((await openTerminal(strict, created.body.id, 409)).body).toMatchObject({ code: 'HostKeyUnverified' });
  });

  // Last: it changes the test sshd's key.
  it('refuses a host whose key changed, before logging in, until an admin pins the new key', async () => {
    const created = await register(api, {}).expect(201);
    const first = await openTerminal(api, created.body.id);
    const before = await TerminalClient.connect(server.baseUrl, first.id, first.token);
    await before.ready;
    before.ws.close();

    await sshd.rotateHostKey();
    const logins = sshd.logins();
    const second = await openTerminal(api, created.body.id);
    const refused = await TerminalClient.connect(server.baseUrl, second.id, second.token);
    expect(await refused.closed).toEqual({ code: hostKeyRefusedCloseCode, reason: `HostKeyMismatch: the host presented ${sshd.hostKeyFingerprint()}` });
    expect(sshd.logins()).toBe(logins);

    await request(api.app).patch(`/api/v1/admin/hosts/${created.body.id}`).set(bearer(api.adminKey)).send({ host_key: sshd.hostPublicKey }).expect(200);
    const third = await openTerminal(api, created.body.id);
    const after = await TerminalClient.connect(server.baseUrl, third.id, third.token);
    await after.ready;
    after.ws.close();
  });
});
