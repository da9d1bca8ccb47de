import type { TestWorkflowEnvironment } from '@temporalio/testing';
import request from 'supertest';
import { createUserKey } from '../../../api/platform/auth';
import { terminalCloseCodes } from '../../../domain/terminal/terminal';
import { eventually, listenWithBridge, startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { startSshServer, type SshServer } from '../../helpers/sshd';
import { connectTestEnv } from '../../helpers/temporal';
import { bearer, refusedStatus, registerSshHost, TerminalClient, testCredentialsKey } from '../../helpers/terminal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let sshd: SshServer;
let api: ApiHarness;
let shortIdle: ApiHarness;
let server: { baseUrl: string; close(): Promise<void> };
let shortIdleServer: { baseUrl: string; close(): Promise<void> };
let hostId: string;
const credentialsKey = testCredentialsKey();

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  sshd = await startSshServer();
  api = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_MAX_ACTIVE_SESSIONS: 50 });
  shortIdle = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_IDLE_TIMEOUT_SECONDS: 4, TERMINAL_MAX_ACTIVE_SESSIONS: 50 });
  server = await listenWithBridge(api.app);
  shortIdleServer = await listenWithBridge(shortIdle.app);
  hostId = await registerSshHost(api.app, api.adminKey, sshd, `ws-${Date.now().toString(36)}`);
});
afterAll(async () => {
  await Promise.all([server.close(), shortIdleServer.close()]);
  await Promise.all([api.stop(), shortIdle.stop()]);
  await sshd.stop();
  await infra.close();
  await env.teardown();
});

async function openSession(harness: ApiHarness, mode = 'embedded'): Promise<{ id: string; token: string; key: string }> {
  const { key } = await createUserKey(infra.pool, `ws-${Math.random().toString(36).slice(2, 12)}`, 'user', 'test');
  const res = await request(harness.app).post('/api/v1/terminals').set(bearer(key)).send({ host_id: hostId, mode }).expect(201);
  return { id: res.body.session_id, token: res.body.token, key };
}

describe('the terminal WebSocket', () => {
  it('round-trips a command through the SSH shell', async () => {
    const session = await openSession(api);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token);
    await term.ready;
    term.type('echo hi-$((6*7))\n');
    await term.waitFor(/hi-42/);
    term.ws.close();
  });

  it('applies a resize sent before the shell is ready', async () => {
    const session = await openSession(api);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token);
    term.control({ type: 'resize', cols: 90, rows: 33 });
    await term.ready;
    term.type('stty size\n');
    await term.waitFor(/^33 90\r?$/m);
    term.ws.close();
  });

  it('opens the PTY at the size asked for, and resizes it', async () => {
    const session = await openSession(api);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token, { cols: 100, rows: 30 });
    await term.ready;
    term.type('stty size\n');
    await term.waitFor(/^30 100\r?$/m);
    const mark = term.output.length;
    term.control({ type: 'resize', cols: 132, rows: 50 });
    term.type('stty size\n');
    await term.waitFor(/^50 132\r?$/m, 20_000, mark);
    term.ws.close();
  });

  it('interrupts a flood with Ctrl-C and keeps answering', async () => {
    const session = await openSession(api);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token);
    await term.ready;
    term.type('yes flood-line\n');
    await term.waitFor(/(flood-line\r?\n){200}/);
    term.type('\x03');
    term.type('echo after-$((40+2))\n');
    await term.waitFor(/after-42/, 30_000);
    term.ws.close();
  });

  it('pauses the SSH output for a reader that falls behind, and Ctrl-C still gets through', async () => {
    const session = await openSession(api);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token);
    await term.ready;
    const pauses = async () => (await request(api.app).get('/api/v1/terminals/metrics').set(bearer(api.adminKey))).body.flow_control_pauses as number;
    const before = await pauses();
    term.type('yes slow-reader\n');
    await term.waitFor(/slow-reader\r?\n/);
    // Stop reading: the bridge's send buffer grows until flow control pauses the SSH stream.
    term.ws.pause();
    await eventually(pauses, (count) => count > before);
    term.type('\x03');
    term.type('echo caught-$((40+2))\n');
    term.ws.resume();
    await term.waitFor(/caught-42/, 45_000);
    term.ws.close();
  });

  it('closes the socket with the reason when the session goes idle', async () => {
    const session = await openSession(shortIdle);
    const term = await TerminalClient.connect(shortIdleServer.baseUrl, session.id, session.token);
    await term.ready;
    expect(await term.closed).toEqual({ code: terminalCloseCodes.idle, reason: 'idle' });
  });

  it('stays open while the page heartbeats over the socket', async () => {
    const session = await openSession(shortIdle);
    const term = await TerminalClient.connect(shortIdleServer.baseUrl, session.id, session.token);
    await term.ready;
    for (let i = 0; i < 6; i++) {
      term.control({ type: 'heartbeat' });
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    term.type('echo still-$((1+1))\n');
    await term.waitFor(/still-2/);
    const row = await request(shortIdle.app).get(`/api/v1/terminals/${session.id}`).set(bearer(session.key)).expect(200);
    expect(row.body.status).toBe('active');
    await request(shortIdle.app).delete(`/api/v1/terminals/${session.id}`).set(bearer(session.key)).expect(200);
    expect(await term.closed).toEqual({ code: terminalCloseCodes.user_close, reason: 'user_close' });
  });

  it('counts open bridges as active_processes', async () => {
    const session = await openSession(api);
    const term = await TerminalClient.connect(server.baseUrl, session.id, session.token);
    await term.ready;
    const during = await request(api.app).get('/api/v1/terminals/metrics').set(bearer(api.adminKey)).expect(200);
    expect(during.body.active_processes).toBeGreaterThanOrEqual(1);
    term.ws.close();
    await term.closed;
  });

  it('refuses a wrong token, a foreign Origin and an ended session', async () => {
    const session = await openSession(api);
    const path = (token: string) => `/api/v1/terminals/${session.id}/ws?token=${encodeURIComponent(token)}`;
    expect(await refusedStatus(server.baseUrl, path('wrong-token'), server.baseUrl)).toBe(401);
    expect(await refusedStatus(server.baseUrl, path(session.token), 'https://evil.example')).toBe(403);
    await request(api.app).delete(`/api/v1/terminals/${session.id}`).set(bearer(session.key)).expect(200);
    expect(await refusedStatus(server.baseUrl, path(session.token), server.baseUrl)).toBe(409);
    // A plain GET of the socket path says to upgrade.
    await request(api.app).get(`/api/v1/terminals/${session.id}/ws`).expect(426);
  });
});
