import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createUserKey, hashApiKey } from '../../api/platform/auth';
import { RoleMismatch } from '../../api/platform/store';
import { terminalCloseCodes } from '../../domain/terminal/terminal';
import { eventually, listenWithBridge, startApiHarness, type ApiHarness } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { containersOfChat, discardChats, newChatId } from '../helpers/sandbox';
import { startSshServer, type SshServer } from '../helpers/sshd';
import { connectTestEnv } from '../helpers/temporal';
import { bearer, registerSshHost, TerminalClient, testCredentialsKey } from '../helpers/terminal';

/**
 * Users and API keys managed by admins over the api, against the real api, Temporal, Docker,
 * sshd and PostgreSQL: a revoked user's live terminal and sandbox really close.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let sshd: SshServer;
let api: ApiHarness;
let server: { baseUrl: string; close(): Promise<void> };
let hostId: string;
const chats = new Set<string>();

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  sshd = await startSshServer();
  api = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: testCredentialsKey(), SANDBOX_TTL_SECONDS: 600 });
  server = await listenWithBridge(api.app);
  hostId = await registerSshHost(api.app, api.adminKey, sshd, `admin-users-${randomUUID().slice(0, 8)}`);
});
afterAll(async () => {
  await discardChats(env.client, infra.docker, infra.config.SESSIONFLOW_INSTANCE, chats);
  await server.close();
  await api.stop();
  await sshd.stop();
  await infra.close();
  await env.teardown();
});

const admin = () => bearer(api.adminKey);
const uniqueName = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** A user made through the api, with one key issued through the api. */
async function newUser(role: 'user' | 'admin' = 'user'): Promise<{ id: string; key: string; keyId: string }> {
  const created = await request(api.app).post('/api/v1/admin/users').set(admin()).send({ name: uniqueName('managed'), role }).expect(201);
  const issued = await request(api.app).post(`/api/v1/admin/users/${created.body.id}/keys`).set(admin()).send({ label: 'first' }).expect(201);
  return { id: created.body.id, key: issued.body.key, keyId: issued.body.id };
}

const canRead = async (key: string) => (await request(api.app).get('/api/v1/terminals').set(bearer(key))).status;

/** A live terminal with its WebSocket connected, and a running sandbox, both the user's. */
async function openSessions(key: string) {
  const terminal = await request(api.app).post('/api/v1/terminals').set(bearer(key)).send({ host_id: hostId }).expect(201);
  const socket = await TerminalClient.connect(server.baseUrl, terminal.body.session_id, terminal.body.token);
  await socket.ready;
  const chatId = newChatId();
  chats.add(chatId);
  await request(api.app).put(`/api/v1/chats/${chatId}/sandbox`).set(bearer(key)).expect(201);
  return { terminalId: terminal.body.session_id as string, socket, chatId };
}

async function expectClosed(sessions: Awaited<ReturnType<typeof openSessions>>): Promise<void> {
  expect(await sessions.socket.closed).toEqual({ code: terminalCloseCodes.user_close, reason: 'user_close' });
  const { rows: [terminal] } = await infra.pool.query('SELECT status, reason_closed FROM terminal_sessions WHERE id = $1', [sessions.terminalId]);
  expect(terminal).toEqual({ status: 'closed', reason_closed: 'user_close' });
  const { rows: sandboxes } = await infra.pool.query('SELECT status FROM sandboxes WHERE chat_id = $1', [sessions.chatId]);
  expect(sandboxes).toEqual([{ status: 'STOPPED' }]);
  const running = await eventually(() => containersOfChat(infra.docker, infra.config.SESSIONFLOW_INSTANCE, sessions.chatId), (list) => list.length === 0);
  expect(running).toEqual([]);
}

describe('users and keys over the api', () => {
  it('lists users and their keys, shows a key only when it is issued, and never its hash', async () => {
    const user = await newUser();
    expect(await canRead(user.key)).toBe(200);
    const listed = await request(api.app).get('/api/v1/admin/users').set(admin()).expect(200);
    expect(listed.body.users).toEqual(expect.arrayContaining([expect.objectContaining({ id: user.id, role: 'user', disabled_at: null, usable_keys: 1 })]));
    const one = await request(api.app).get(`/api/v1/admin/users/${user.id}`).set(admin()).expect(200);
    expect(one.body.keys).toEqual([{ id: user.keyId, label: 'first', created_at: expect.stringMatching(/Z$/), expires_at: null, revoked_at: null, status: 'active' }]);
    const everything = JSON.stringify([listed.body, one.body]);
    expect(everything).not.toContain(user.key);
    expect(everything).not.toContain(hashApiKey(user.key));
  });

  it('lets only admins manage users', async () => {
    const user = await newUser();
    await request(api.app).get('/api/v1/admin/users').set(bearer(user.key)).expect(403);
    await request(api.app).post(`/api/v1/admin/users/${user.id}/keys`).set(bearer(user.key)).send({}).expect(403);
    await request(api.app).post(`/api/v1/admin/users/${user.id}/disable`).set(bearer(user.key)).expect(403);
  });

  it('names what is wrong: a taken name, a bad name, an unknown user or key', async () => {
    const user = await newUser();
    const { body: created } = await request(api.app).get(`/api/v1/admin/users/${user.id}`).set(admin()).expect(200);
    expect((await request(api.app).post('/api/v1/admin/users').set(admin()).send({ name: created.name }).expect(409)).body.code).toBe('UserNameTaken');
    const bad = await request(api.app).post('/api/v1/admin/users').set(admin()).send({ name: 'no spaces allowed' }).expect(400);
    expect(bad.body.errors[0].field).toBe('body.name');
    expect((await request(api.app).get(`/api/v1/admin/users/${randomUUID()}`).set(admin()).expect(404)).body.code).toBe('UserNotFound');
    expect((await request(api.app).delete(`/api/v1/admin/users/${user.id}/keys/${randomUUID()}`).set(admin()).expect(404)).body.code).toBe('ApiKeyNotFound');
    // Another user's key is not this user's.
    const other = await newUser();
    expect((await request(api.app).delete(`/api/v1/admin/users/${user.id}/keys/${other.keyId}`).set(admin()).expect(404)).body.code).toBe('ApiKeyNotFound');
    expect(await canRead(other.key)).toBe(200);
  });
});

describe('a role', () => {
  it('is never changed by issuing a key over the api', async () => {
    const user = await newUser();
    const res = await request(api.app).post(`/api/v1/admin/users/${user.id}/keys`).set(admin()).send({ label: 'sneaky', role: 'admin' }).expect(400);
    expect(res.body.code).toBe('ValidationFailed');
    expect((await request(api.app).get(`/api/v1/admin/users/${user.id}`).set(admin())).body).toMatchObject({ role: 'user', usable_keys: 1 });
    await request(api.app).get('/api/v1/admin/users').set(bearer(user.key)).expect(403);
  });

  it('is never changed by creating a key from the command line, which refuses and adds no key', async () => {
    const name = uniqueName('cli');
    const { userId } = await createUserKey(infra.pool, name, 'user', 'cli');
    await expect(createUserKey(infra.pool, name, 'admin', 'cli')).rejects.toBeInstanceOf(RoleMismatch);
    const { rows } = await infra.pool.query('SELECT role, (SELECT count(*)::int FROM api_keys WHERE user_id = $1) AS keys FROM users WHERE id = $1', [userId]);
    expect(rows).toEqual([{ role: 'user', keys: 1 }]);
    // Leaving the role out adds a key to the user as it is.
    await createUserKey(infra.pool, name, undefined, 'cli');
    expect((await infra.pool.query('SELECT role FROM users WHERE id = $1', [userId])).rows).toEqual([{ role: 'user' }]);
  });
});

describe('key expiry', () => {
  it('refuses a key once its expiry has passed, and lists it as expired', async () => {
    const user = await newUser();
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const issued = await request(api.app).post(`/api/v1/admin/users/${user.id}/keys`).set(admin()).send({ label: 'expiring', expires_at: expiresAt }).expect(201);
    expect(issued.body).toMatchObject({ expires_at: expiresAt, status: 'active' });
    expect(await canRead(issued.body.key)).toBe(200);
    // The hour passes.
    await infra.pool.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", [issued.body.id]);
    expect(await canRead(issued.body.key)).toBe(401);
    const { body } = await request(api.app).get(`/api/v1/admin/users/${user.id}`).set(admin()).expect(200);
    expect(body.keys.find((key: { id: string }) => key.id === issued.body.id)).toMatchObject({ status: 'expired' });
    expect(body.usable_keys).toBe(1);
  });

  it('must lie in the future, with an explicit offset', async () => {
    const user = await newUser();
    const past = await request(api.app).post(`/api/v1/admin/users/${user.id}/keys`).set(admin()).send({ expires_at: '2020-01-01T00:00:00Z' }).expect(400);
    expect(past.body.errors).toEqual([{ field: 'body.expires_at', message: 'must be in the future' }]);
    const naive = await request(api.app).post(`/api/v1/admin/users/${user.id}/keys`).set(admin()).send({ expires_at: '2999-01-01T00:00:00' }).expect(400);
    expect(naive.body.errors[0].field).toBe('body.expires_at');
  });
});

describe('revoking access', () => {
  it('disables a user: every key is refused and their live terminal and sandbox are closed', async () => {
    const user = await newUser();
    const sessions = await openSessions(user.key);
    const disabled = await request(api.app).post(`/api/v1/admin/users/${user.id}/disable`).set(admin()).expect(200);
    expect(disabled.body).toEqual({ user: expect.objectContaining({ id: user.id, disabled_at: expect.stringMatching(/Z$/) }), closed: { terminals: [sessions.terminalId], sandboxes: [sessions.chatId] } });
    expect(await canRead(user.key)).toBe(401);
    await expectClosed(sessions);
    // Idempotent: nothing left to close, the first time stays.
    const again = await request(api.app).post(`/api/v1/admin/users/${user.id}/disable`).set(admin()).expect(200);
    expect(again.body).toEqual({ user: expect.objectContaining({ disabled_at: disabled.body.user.disabled_at }), closed: { terminals: [], sandboxes: [] } });
    expect((await request(api.app).post(`/api/v1/admin/users/${user.id}/keys`).set(admin()).send({}).expect(409)).body.code).toBe('UserDisabled');
    // Enabled again, the unrevoked key works; what was closed stays closed.
    await request(api.app).post(`/api/v1/admin/users/${user.id}/enable`).set(admin()).expect(200);
    expect(await canRead(user.key)).toBe(200);
    expect((await request(api.app).get(`/api/v1/terminals/${sessions.terminalId}`).set(bearer(user.key))).body.status).toBe('closed');
  });

  it('revokes one key of two without touching the sessions, and the last one closes them', async () => {
    const user = await newUser();
    const second = await request(api.app).post(`/api/v1/admin/users/${user.id}/keys`).set(admin()).send({ label: 'second' }).expect(201);
    const sessions = await openSessions(user.key);
    const first = await request(api.app).delete(`/api/v1/admin/users/${user.id}/keys/${user.keyId}`).set(admin()).expect(200);
    expect(first.body).toEqual({ key: expect.objectContaining({ id: user.keyId, status: 'revoked' }), closed: { terminals: [], sandboxes: [] } });
    expect(await canRead(user.key)).toBe(401);
    expect(await canRead(second.body.key)).toBe(200);
    expect((await request(api.app).get(`/api/v1/terminals/${sessions.terminalId}`).set(bearer(second.body.key))).body.status).toBe('active');
    const last = await request(api.app).delete(`/api/v1/admin/users/${user.id}/keys/${second.body.id}`).set(admin()).expect(200);
    expect(last.body.closed).toEqual({ terminals: [sessions.terminalId], sandboxes: [sessions.chatId] });
    expect(await canRead(second.body.key)).toBe(401);
    await expectClosed(sessions);
  });

  it('refuses an admin who would lock themselves out', async () => {
    const self = await newUser('admin');
    const disable = await request(api.app).post(`/api/v1/admin/users/${self.id}/disable`).set(bearer(self.key)).expect(409);
    expect(disable.body.code).toBe('SelfLockout');
    const revoke = await request(api.app).delete(`/api/v1/admin/users/${self.id}/keys/${self.keyId}`).set(bearer(self.key)).expect(409);
    expect(revoke.body.code).toBe('SelfLockout');
    expect(await canRead(self.key)).toBe(200);
  });
});
