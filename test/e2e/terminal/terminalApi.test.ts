import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createApp } from '../../../api/platform/app';
import { createUserKey } from '../../../api/platform/auth';
import { OwnerId, SessionDetail, SessionKind, SessionStatus } from '../../../domain/shared/searchAttributes';
import { eventually, startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { startSshServer, type SshServer } from '../../helpers/sshd';
import { createLogger } from '../../../platform/logger';
import { connectTestEnv } from '../../helpers/temporal';
import { bearer, registerSshHost, testCredentialsKey } from '../../helpers/terminal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let sshd: SshServer;
let api: ApiHarness;
let shortIdle: ApiHarness;
let shortTtl: ApiHarness;
const hosts: string[] = [];
const credentialsKey = testCredentialsKey();

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  sshd = await startSshServer();
  api = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_IDLE_TIMEOUT_SECONDS: 120, TERMINAL_SESSION_TTL_SECONDS: 1800 });
  // Expiry in seconds: the dev server runs timers in real time.
  shortIdle = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_IDLE_TIMEOUT_SECONDS: 3, TERMINAL_SESSION_TTL_SECONDS: 600 });
  shortTtl = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_IDLE_TIMEOUT_SECONDS: 120, TERMINAL_SESSION_TTL_SECONDS: 3 });
  const suffix = Date.now().toString(36);
  for (const name of ['alpha', 'beta', 'gamma']) hosts.push(await registerSshHost(api.app, api.adminKey, sshd, `${name}-${suffix}`));
});
afterAll(async () => {
  await Promise.all([api.stop(), shortIdle.stop(), shortTtl.stop()]);
  await sshd.stop();
  await infra.close();
  await env.teardown();
});

async function newUser(): Promise<string> {
  return (await createUserKey(infra.pool, `tu-${Math.random().toString(36).slice(2, 12)}`, 'user', 'test')).key;
}
const open = (harness: ApiHarness, key: string, hostId: string, mode = 'embedded') =>
  request(harness.app).post('/api/v1/terminals').set(bearer(key)).send({ host_id: hostId, mode });

describe('SSH hosts', () => {
  it('never returns the credential, and stores it only sealed', async () => {
    const created = await request(api.app).post('/api/v1/admin/hosts').set(bearer(api.adminKey))
      // Nothing listens on 2222: the host key is given, so nothing needs to be read there.
      .send({ name: `secret-${Date.now()}`, address: '127.0.0.1', port: 2222, username: 'ops', auth: { type: 'password', password: 'hunter2-very-secret' }, host_key: sshd.hostKeyFingerprint() })
      .expect(201);
    expect(created.body).toEqual({
      id: expect.any(String), name: expect.any(String), address: '127.0.0.1', port: 2222, username: 'ops', auth_type: 'password',
      host_key: { fingerprint: sshd.hostKeyFingerprint(), algorithm: null, source: 'admin', pinned_at: expect.stringMatching(/Z$/) },
      created_at: expect.stringMatching(/Z$/), updated_at: expect.stringMatching(/Z$/),
    });
    const listed = await request(api.app).get('/api/v1/admin/hosts').set(bearer(api.adminKey)).expect(200);
    expect(JSON.stringify(listed.body)).not.toContain('hunter2');
    const { rows: [row] } = await infra.pool.query<{ credential_sealed: Buffer }>('SELECT credential_sealed FROM terminal_hosts WHERE id = $1', [created.body.id]);
    expect(row!.credential_sealed.toString('latin1')).not.toContain('hunter2');
    await request(api.app).patch(`/api/v1/admin/hosts/${created.body.id}`).set(bearer(api.adminKey)).send({ port: 2200, host_key: sshd.hostKeyFingerprint() }).expect(200);
    await request(api.app).delete(`/api/v1/admin/hosts/${created.body.id}`).set(bearer(api.adminKey)).expect(204);
    await request(api.app).get(`/api/v1/admin/hosts/${created.body.id}`).set(bearer(api.adminKey)).expect(404);
  });

  it('lets only admins register hosts, and rejects a bad body naming the field', async () => {
    await request(api.app).post('/api/v1/admin/hosts').set(bearer(api.userKey)).send({}).expect(403);
    const bad = await request(api.app).post('/api/v1/admin/hosts').set(bearer(api.adminKey)).send({ name: 'x', address: 'h', username: 'u', auth: { type: 'telepathy' } }).expect(400);
    expect(bad.body.errors[0].field).toMatch(/^body\.auth/);
  });
});

describe('opening a terminal', () => {
  it('creates a session with a 64-hex id and a one-time token stored only as its SHA-256', async () => {
    const key = await newUser();
    const res = await open(api, key, hosts[0]!).expect(201);
    expect(res.body).toMatchObject({ session_id: expect.stringMatching(/^[0-9a-f]{64}$/), status: 'active', reused: false, mode: 'embedded', reason_closed: null });
    expect(Buffer.from(res.body.token, 'base64url').length).toBeGreaterThanOrEqual(32);
    const { rows: [row] } = await infra.pool.query<{ token_hash: string }>('SELECT token_hash FROM terminal_sessions WHERE id = $1', [res.body.session_id]);
    expect(row!.token_hash).toBe(createHash('sha256').update(res.body.token).digest('hex'));
    for (const field of ['created_at', 'last_seen_at', 'expires_at']) expect(res.body[field]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(res.body.expires_at) - Date.parse(res.body.created_at)).toBe(1800 * 1000);
  });

  it('reuses the active session of the same user, host and mode with a fresh token', async () => {
    const key = await newUser();
    const first = await open(api, key, hosts[0]!).expect(201);
    const again = await open(api, key, hosts[0]!).expect(200);
    expect(again.body).toMatchObject({ session_id: first.body.session_id, reused: true });
    expect(again.body.token).not.toBe(first.body.token);
    // The old token no longer opens anything.
    await request(api.app).post(`/api/v1/terminals/${first.body.session_id}/close-beacon`).type('text/plain').send(JSON.stringify({ token: first.body.token })).expect(404);
  });

  it('does not reuse a session of another mode', async () => {
    const key = await newUser();
    const embedded = await open(api, key, hosts[0]!, 'embedded').expect(201);
    const popout = await open(api, key, hosts[0]!, 'popout').expect(201);
    expect(popout.body.session_id).not.toBe(embedded.body.session_id);
  });

  it('does not reuse a session that went idle: it expired with reason idle', async () => {
    const key = await newUser();
    const first = await open(shortIdle, key, hosts[0]!).expect(201);
    const ended = await eventually(() => request(shortIdle.app).get(`/api/v1/terminals/${first.body.session_id}`).set(bearer(key)), (res) => res.body.status !== 'active');
    expect(ended.body).toMatchObject({ status: 'expired', reason_closed: 'idle', closed_at: expect.stringMatching(/Z$/) });
    const second = await open(shortIdle, key, hosts[0]!).expect(201);
    expect(second.body).toMatchObject({ reused: false });
    expect(second.body.session_id).not.toBe(first.body.session_id);
  });

  it('answers 429 with the SESSION_LIMIT body at the cap, offering the session on the same host', async () => {
    const key = await newUser();
    const a = await open(api, key, hosts[0]!, 'embedded').expect(201);
    const b = await open(api, key, hosts[0]!, 'popout').expect(201);
    const c = await open(api, key, hosts[1]!, 'embedded').expect(201);
    const limited = await open(api, key, hosts[1]!, 'popout').expect(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(limited.body).toMatchObject({
      code: 'SessionLimit', status: 429,
      error: 'SESSION_LIMIT', message: expect.any(String), max_active: 3, current_count: 3,
      can_reuse: true, reusable_session_id: c.body.session_id,
    });
    expect(limited.body.active_sessions).toEqual([a, b, c].map(({ body }) => ({
      session_id: body.session_id, host_id: body.host_id, host_name: body.host_name, mode: body.mode, age_seconds: expect.any(Number), last_seen_seconds: expect.any(Number),
    })));
    expect(limited.body.suggested_actions).toEqual(['reuse_existing', 'close_oldest', ...[a, b, c].map(({ body }) => `close_session:${body.session_id}`)]);

    const elsewhere = await open(api, key, hosts[2]!).expect(429);
    expect(elsewhere.body).toMatchObject({ can_reuse: false, reusable_session_id: null });
    expect(elsewhere.body.suggested_actions).not.toContain('reuse_existing');

    // Closing one makes room.
    await request(api.app).delete(`/api/v1/terminals/${a.body.session_id}`).set(bearer(key)).expect(200);
    await open(api, key, hosts[2]!).expect(201);
  });

  it('answers 400 for a bad body and 404 for an unknown host, starting nothing', async () => {
    const key = await newUser();
    const bad = await request(api.app).post('/api/v1/terminals').set(bearer(key)).send({ host_id: 'nope', mode: 'sideways' }).expect(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['body.host_id', 'body.mode']);
    await open(api, key, '00000000-0000-4000-8000-000000000000').expect(404);
    const mine = await request(api.app).get('/api/v1/terminals').set(bearer(key)).expect(200);
    expect(mine.body.sessions).toEqual([]);
  });
});

describe('closing', () => {
  it('is idempotent: closing twice succeeds and the status stays closed with reason user_close', async () => {
    const key = await newUser();
    const { body } = await open(api, key, hosts[0]!).expect(201);
    const first = await request(api.app).delete(`/api/v1/terminals/${body.session_id}`).set(bearer(key)).expect(200);
    expect(first.body).toMatchObject({ status: 'closed', reason_closed: 'user_close', closed_at: expect.stringMatching(/Z$/) });
    const second = await request(api.app).delete(`/api/v1/terminals/${body.session_id}`).set(bearer(key)).expect(200);
    expect(second.body).toMatchObject({ status: 'closed', reason_closed: 'user_close', closed_at: first.body.closed_at });
  });

  it('takes a close beacon without headers (text/plain JSON or a form) and records client_lost', async () => {
    const key = await newUser();
    const plain = await open(api, key, hosts[0]!, 'embedded').expect(201);
    await request(api.app).post(`/api/v1/terminals/${plain.body.session_id}/close-beacon`).set('Content-Type', 'text/plain;charset=UTF-8').send(JSON.stringify({ token: plain.body.token })).expect(204);
    const closed = await request(api.app).get(`/api/v1/terminals/${plain.body.session_id}`).set(bearer(key)).expect(200);
    expect(closed.body).toMatchObject({ status: 'closed', reason_closed: 'client_lost' });

    const form = await open(api, key, hosts[0]!, 'popout').expect(201);
    await request(api.app).post(`/api/v1/terminals/${form.body.session_id}/close-beacon`).type('form').send({ token: form.body.token }).expect(204);
    expect((await request(api.app).get(`/api/v1/terminals/${form.body.session_id}`).set(bearer(key))).body.reason_closed).toBe('client_lost');
  });

  it('refuses a beacon with a wrong token', async () => {
    const key = await newUser();
    const { body } = await open(api, key, hosts[0]!).expect(201);
    await request(api.app).post(`/api/v1/terminals/${body.session_id}/close-beacon`).type('text/plain').send(JSON.stringify({ token: 'not-the-token' })).expect(404);
    expect((await request(api.app).get(`/api/v1/terminals/${body.session_id}`).set(bearer(key))).body.status).toBe('active');
  });
});

describe('heartbeats', () => {
  it('move last_seen_at forward and report the time left', async () => {
    const key = await newUser();
    const { body } = await open(api, key, hosts[0]!).expect(201);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const beat = await request(api.app).post(`/api/v1/terminals/${body.session_id}/heartbeat`).set(bearer(key)).expect(200);
    expect(beat.body).toEqual({ session_id: body.session_id, status: 'active', last_seen_at: expect.stringMatching(/Z$/), remaining_seconds: expect.any(Number), healthy: true });
    expect(Date.parse(beat.body.last_seen_at)).toBeGreaterThan(Date.parse(body.last_seen_at));
    expect(beat.body.remaining_seconds).toBeGreaterThan(1700);
    expect(beat.body.remaining_seconds).toBeLessThanOrEqual(1800);
  });

  it('do not move last_seen_at on a closed session', async () => {
    const key = await newUser();
    const { body } = await open(api, key, hosts[0]!).expect(201);
    const closed = await request(api.app).delete(`/api/v1/terminals/${body.session_id}`).set(bearer(key)).expect(200);
    const beat = await request(api.app).post(`/api/v1/terminals/${body.session_id}/heartbeat`).set(bearer(key)).expect(200);
    expect(beat.body).toMatchObject({ status: 'closed', last_seen_at: closed.body.last_seen_at, healthy: false, remaining_seconds: 0 });
  });

  it('keep a session alive past its idle timeout, which expires it once they stop', async () => {
    const key = await newUser();
    const { body } = await open(shortIdle, key, hosts[0]!).expect(201);
    const started = Date.now();
    while (Date.now() - started < 6000) {
      const beat = await request(shortIdle.app).post(`/api/v1/terminals/${body.session_id}/heartbeat`).set(bearer(key)).expect(200);
      expect(beat.body.status).toBe('active');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const ended = await eventually(() => request(shortIdle.app).get(`/api/v1/terminals/${body.session_id}`).set(bearer(key)), (res) => res.body.status !== 'active');
    expect(ended.body).toMatchObject({ status: 'expired', reason_closed: 'idle' });
  });
});

describe('expiry', () => {
  it('ends a session at its absolute TTL with reason ttl, heartbeats or not', async () => {
    const key = await newUser();
    const { body } = await open(shortTtl, key, hosts[0]!).expect(201);
    const ended = await eventually(async () => {
      await request(shortTtl.app).post(`/api/v1/terminals/${body.session_id}/heartbeat`).set(bearer(key));
      return request(shortTtl.app).get(`/api/v1/terminals/${body.session_id}`).set(bearer(key));
    }, (res) => res.body.status !== 'active');
    expect(ended.body).toMatchObject({ status: 'expired', reason_closed: 'ttl' });
    expect(Date.parse(ended.body.closed_at)).toBeGreaterThanOrEqual(Date.parse(body.expires_at));
  });
});

describe('reading sessions', () => {
  it('lists mine, filtered by status and by a start time read as UTC whatever its zone', async () => {
    const key = await newUser();
    const a = await open(api, key, hosts[0]!, 'embedded').expect(201);
    const b = await open(api, key, hosts[0]!, 'popout').expect(201);
    await request(api.app).delete(`/api/v1/terminals/${a.body.session_id}`).set(bearer(key)).expect(200);
    const active = await request(api.app).get('/api/v1/terminals?status=active').set(bearer(key)).expect(200);
    expect(active.body.sessions.map((s: { session_id: string }) => s.session_id)).toEqual([b.body.session_id]);

    // The same instant three ways: naive (read as UTC), with Z, and with an offset.
    const created = new Date(a.body.created_at);
    const naive = created.toISOString().replace('Z', '');
    const offset = new Date(created.getTime() + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    for (const since of [naive, created.toISOString(), offset]) {
      const listed = await request(api.app).get('/api/v1/terminals').query({ since }).set(bearer(key)).expect(200);
      expect(listed.body.sessions).toHaveLength(2);
    }
    const later = new Date(created.getTime() + 3600_000).toISOString().replace('Z', '');
    expect((await request(api.app).get('/api/v1/terminals').query({ since: later }).set(bearer(key)).expect(200)).body.sessions).toEqual([]);
    await request(api.app).get('/api/v1/terminals').query({ since: 'yesterday' }).set(bearer(key)).expect(400);
  });

  it('hides another user\'s session behind 404', async () => {
    const owner = await newUser();
    const other = await newUser();
    const { body } = await open(api, owner, hosts[0]!).expect(201);
    await request(api.app).get(`/api/v1/terminals/${body.session_id}`).set(bearer(other)).expect(404);
    await request(api.app).delete(`/api/v1/terminals/${body.session_id}`).set(bearer(other)).expect(404);
    await request(api.app).post(`/api/v1/terminals/${body.session_id}/heartbeat`).set(bearer(other)).expect(404);
    expect((await request(api.app).get(`/api/v1/terminals/${body.session_id}`).set(bearer(owner))).body.status).toBe('active');
  });

  it('keeps the workflow\'s search attributes current', async () => {
    const key = await newUser();
    const { body } = await open(api, key, hosts[0]!).expect(201);
    const handle = env.client.workflow.getHandle(body.workflow_id);
    const running = await handle.describe();
    expect(running.typedSearchAttributes.get(SessionKind)).toBe('terminal');
    expect([running.typedSearchAttributes.get(SessionStatus), running.typedSearchAttributes.get(SessionDetail)]).toEqual(['RUNNING', 'active']);
    const ownerId = running.typedSearchAttributes.get(OwnerId);
    const { rows: [row] } = await infra.pool.query<{ user_id: string }>('SELECT user_id FROM terminal_sessions WHERE id = $1', [body.session_id]);
    expect(ownerId).toBe(row!.user_id);
    await request(api.app).delete(`/api/v1/terminals/${body.session_id}`).set(bearer(key)).expect(200);
    await handle.result();
    const ended = (await handle.describe()).typedSearchAttributes;
    expect([ended.get(SessionStatus), ended.get(SessionDetail)]).toEqual(['ENDED', 'closed']);
  });
});

describe('terminal metrics', () => {
  it('reports the seed\'s keys and expiries by reason, also in Prometheus text', async () => {
    const res = await request(api.app).get('/api/v1/terminals/metrics').set(bearer(api.adminKey)).expect(200);
    expect(res.body).toMatchObject({
      sessions_created: expect.any(Number), sessions_reused: expect.any(Number), session_limit_hits: expect.any(Number),
      active_processes: 0, gc_running: expect.any(Boolean), expired: { ttl: expect.any(Number), idle: expect.any(Number) },
    });
    expect(res.body.sessions_created).toBeGreaterThan(0);
    expect(res.body.sessions_reused).toBeGreaterThan(0);
    expect(res.body.session_limit_hits).toBeGreaterThan(0);
    const text = await request(api.app).get('/metrics').expect(200);
    expect(text.text).toMatch(/sessionflow_terminal_sessions_created_total \d+/);
    expect(text.text).toMatch(/sessionflow_terminal_sessions_ended\{reason="idle"\} \d+/);
    await request(api.app).get('/api/v1/terminals/metrics').set(bearer(api.userKey)).expect(403);
  });
});

describe('logs', () => {
  it('never carry a connect token, not even the 426 answer to a plain GET of the socket', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(chunk.toString()); done(); } });
    const app = createApp({
      config: { ...infra.config, TEMPORAL_TASK_QUEUE: api.taskQueue, TERMINAL_CREDENTIALS_KEY: credentialsKey },
      temporal: env.client, pool: infra.pool, docker: infra.docker, log: createLogger('info', 'token-log-test', sink),
    });
    const token = 'sf-secret-token-0123456789abcdef';
    const sessionId = 'a'.repeat(64);
    await request(app).get(`/api/v1/terminals/${sessionId}/ws?token=${token}&cols=80`).expect(426);
    await request(app).get(`/api/v1/terminals/${sessionId}?access_token=${token}`).expect(401);
    const logged = lines.join('');
    expect(logged).toContain(`/api/v1/terminals/${sessionId}/ws?token=[redacted]&cols=80`);
    expect(logged).not.toContain(token);
  });
});
