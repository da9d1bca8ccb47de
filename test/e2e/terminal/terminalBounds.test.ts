import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { createUserKey } from '../../../api/platform/auth';
import { makeTerminalWorkflowId, replacedCloseCode } from '../../../domain/terminal/terminal';
import { eventually, listenWithBridge, startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { startTcpGate, type TcpGate } from '../../helpers/sshFaults';
import { startSshServer, type SshServer } from '../../helpers/sshd';
import { connectTestEnv } from '../../helpers/temporal';
import { bearer, registerSshHost, TerminalClient, testCredentialsKey } from '../../helpers/terminal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let sshd: SshServer;
let gate: TcpGate;
let api: ApiHarness;
let second: ApiHarness;
let server: { baseUrl: string; close(): Promise<void> };
let secondServer: { baseUrl: string; close(): Promise<void> };
let hostId: string;
let gatedHostId: string;
const credentialsKey = testCredentialsKey();
const mib = 1024 * 1024;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  sshd = await startSshServer();
  gate = await startTcpGate(sshd.port);
  // The default cap (3); heartbeats reach the workflow at most once a minute here.
  const settings = { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_IDLE_TIMEOUT_SECONDS: 600, TERMINAL_HEARTBEAT_MIN_INTERVAL_MS: 60_000 };
  api = await startApiHarness(env, infra, settings);
  second = await startApiHarness(env, infra, settings);
  server = await listenWithBridge(api.app);
  secondServer = await listenWithBridge(second.app);
  hostId = await registerSshHost(api.app, api.adminKey, sshd, unique());
  gatedHostId = (await request(api.app).post('/api/v1/admin/hosts').set(bearer(api.adminKey))
    .send({ name: unique(), address: '127.0.0.1', port: gate.port, username: sshd.username, auth: { type: 'private_key', private_key: sshd.privateKey } }).expect(201)).body.id;
});
afterAll(async () => {
  await Promise.all([server.close(), secondServer.close()]);
  await Promise.all([api.stop(), second.stop()]);
  await gate.stop();
  await sshd.stop();
  await infra.close();
  await env.teardown();
});

function unique(): string {
  return `tb-${Math.random().toString(36).slice(2, 10)}`;
}
async function newUser(): Promise<string> {
  return (await createUserKey(infra.pool, unique(), 'user', 'test')).key;
}
const countOf = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;
const open = (key: string, host: string, mode = 'embedded') => request(api.app).post('/api/v1/terminals').set(bearer(key)).send({ host_id: host, mode });

async function activeRows(key: string): Promise<number> {
  return (await request(api.app).get('/api/v1/terminals?status=active').set(bearer(key)).expect(200)).body.sessions.length as number;
}

/**
 * Sends `payload` as a well-behaved client does: the next 64 KiB frame only while little is
 * queued in its own socket. `untilStalled` stops once the api has taken nothing more for a
 * second and answers how much it took; `rest` sends what is left.
 */
class Pump {
  private sent = 0;

  constructor(private readonly term: TerminalClient, private readonly payload: Buffer) {}

  /** Bytes handed to the api (sent and no longer queued here). */
  get taken(): number {
    return this.sent - this.term.ws.bufferedAmount;
  }

  async untilStalled(): Promise<number> {
    let last = -1;
    for (let still = 0; still < 20 && this.taken < this.payload.length;) {
      this.fill();
      await new Promise((resolve) => setTimeout(resolve, 50));
      still = this.taken === last ? still + 1 : 0;
      last = this.taken;
    }
    return this.taken;
  }

  async rest(): Promise<void> {
    while (this.sent < this.payload.length) {
      this.fill();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private fill(): void {
    while (this.sent < this.payload.length && this.term.ws.bufferedAmount < 256 * 1024) {
      this.term.ws.send(this.payload.subarray(this.sent, this.sent + 64 * 1024), { binary: true });
      this.sent = Math.min(this.sent + 64 * 1024, this.payload.length);
    }
  }
}

describe('the per-user cap', () => {
  it('opens exactly the cap when 50 opens of one user arrive at once', async () => {
    const { key, userId } = await createUserKey(infra.pool, unique(), 'user', 'test');
    const hosts = await Promise.all(Array.from({ length: 25 }, () => registerSshHost(api.app, api.adminKey, sshd, unique())));
    // Every host and mode once: no open can reuse another's session.
    const answers = await Promise.all(hosts.flatMap((host) => [open(key, host, 'embedded'), open(key, host, 'popout')]));
    const statuses = answers.map((res) => res.status);
    expect([countOf(statuses, 201), countOf(statuses, 429)]).toEqual([3, 47]);
    expect(await activeRows(key)).toBe(3);
    // And no workflow was started beyond them.
    const running = await eventually(() => env.client.workflow.count(`SessionKind = 'terminal' AND OwnerId = '${userId}' AND ExecutionStatus = 'Running'`), ({ count }) => count === 3);
    expect(running.count).toBe(3);
  });

  it('gives simultaneous opens on one host and mode one session, reused by all but the first', async () => {
    const key = await newUser();
    const answers = await Promise.all(Array.from({ length: 20 }, () => open(key, hostId)));
    const statuses = answers.map((res) => res.status);
    expect([countOf(statuses, 201), countOf(statuses, 200)]).toEqual([1, 19]);
    expect(new Set(answers.map((res) => res.body.session_id)).size).toBe(1);
    expect(await activeRows(key)).toBe(1);
  });

  it('lets the opens of many users proceed at once (more than the api has connections)', async () => {
    const keys = await Promise.all(Array.from({ length: 12 }, () => newUser()));
    const answers = await Promise.all(keys.map((key) => open(key, hostId)));
    expect(answers.map((res) => res.status)).toEqual(keys.map(() => 201));
  });
});

describe('one live bridge per session', () => {
  it('closes the older socket when the same token connects again, so the host sees one connection', async () => {
    const own = await startSshServer();
    try {
      const host = await registerSshHost(api.app, api.adminKey, own, unique());
      const key = await newUser();
      const { body } = await open(key, host).expect(201);
      const sockets: TerminalClient[] = [];
      for (let i = 0; i < 5; i++) {
        const term = await TerminalClient.connect(server.baseUrl, body.session_id, body.token);
        sockets.push(term);
        await term.ready;
      }
      for (const old of sockets.slice(0, -1)) expect(await old.closed).toEqual({ code: replacedCloseCode, reason: 'replaced' });
      expect(await eventually(async () => own.establishedConnections(), (count) => count === 1)).toBe(1);
      const live = sockets.at(-1)!;
      live.type('echo live-$((6*7))\n');
      await live.waitFor(/live-42/);
      live.ws.close();
    } finally {
      await own.stop();
    }
  });

  it('closes a bridge another api process holds when the session connects here', async () => {
    const key = await newUser();
    const { body } = await open(key, hostId, 'popout').expect(201);
    const there = await TerminalClient.connect(server.baseUrl, body.session_id, body.token);
    await there.ready;
    const here = await TerminalClient.connect(secondServer.baseUrl, body.session_id, body.token);
    await here.ready;
    expect(await there.closed).toEqual({ code: replacedCloseCode, reason: 'replaced' });
    here.type('echo here-$((6*7))\n');
    await here.waitFor(/here-42/);
    here.ws.close();
  });
});

describe('what a client sends', () => {
  it('is not read while the shell does not read it, and arrives whole once it does', async () => {
    const key = await newUser();
    const { body } = await open(key, hostId).expect(201);
    const term = await TerminalClient.connect(server.baseUrl, body.session_id, body.token);
    await term.ready;
    const go = join(sshd.dir, `go-${body.session_id.slice(0, 8)}`);
    const size = 64 * mib;
    // Raw mode, no echo: the bytes reach `head` as sent. The shell reads nothing until `go` exists.
    term.type(`stty raw -echo; echo RE""ADY; while [ ! -e ${go} ]; do sleep 0.1; done; head -c ${size} | sha256sum; stty sane\n`);
    await term.waitFor(/READY/);
    const payload = randomBytes(size);
    const pump = new Pump(term, payload);
    // The api holds at most the SSH window and its channel's buffer (2 MiB each); the kernel's
    // socket buffers hold a few more. Everything else waits at the sender.
    expect(await pump.untilStalled()).toBeLessThan(16 * mib);
    writeFileSync(go, '');
    await pump.rest();
    const [, digest] = await term.waitFor(/([0-9a-f]{64}) {2}-/, 120_000);
    expect(digest).toBe(createHash('sha256').update(payload).digest('hex'));
    term.ws.close();
  });

  it('is held to a fixed amount while the SSH connection is still opening', async () => {
    const key = await newUser();
    const { body } = await open(key, gatedHostId).expect(201);
    gate.close();
    try {
      const term = await TerminalClient.connect(server.baseUrl, body.session_id, body.token);
      // Typeahead is kept up to 64 KiB; beyond it, the api stops reading the socket.
      expect(await new Pump(term, Buffer.alloc(64 * mib, 'x')).untilStalled()).toBeLessThan(16 * mib);
      term.ws.terminate();
    } finally {
      gate.open();
    }
  });

  it('sends at most one heartbeat per interval to the workflow, over the socket and over HTTP', async () => {
    const key = await newUser();
    const { body } = await open(key, hostId).expect(201);
    const term = await TerminalClient.connect(server.baseUrl, body.session_id, body.token);
    await term.ready;
    for (let i = 0; i < 200; i++) term.control({ type: 'heartbeat' });
    // Frames are handled in order: once the shell answers this, every heartbeat was handled.
    term.type('echo beats-$((6*7))\n');
    await term.waitFor(/beats-42/);
    for (let i = 0; i < 20; i++) {
      const beat = await request(api.app).post(`/api/v1/terminals/${body.session_id}/heartbeat`).set(bearer(key)).expect(200);
      expect(beat.body).toMatchObject({ status: 'active', healthy: true });
    }
    const history = await env.client.workflow.getHandle(makeTerminalWorkflowId(body.session_id)).fetchHistory();
    const heartbeats = (history.events ?? []).filter((event) => event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId
      && event.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest.input?.name === 'terminalHeartbeat');
    expect(heartbeats).toHaveLength(1);
    term.ws.close();
  });
});
