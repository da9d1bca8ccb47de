import { randomUUID } from 'node:crypto';
import { createUserKey } from '../../api/platform/auth';
import { listenWithBridge, startApiHarness } from '../helpers/api';
import { openInfra } from '../helpers/infra';
import { startSshServer } from '../helpers/sshd';
import { connectTestEnv } from '../helpers/temporal';
import { TerminalClient, testCredentialsKey } from '../helpers/terminal';
import { load, printTable, runBench } from './stats';

/**
 * Terminal figures on real parts: opening (workflow start + read model), reuse, heartbeats,
 * close, WebSocket → SSH shell ready, command round trips through the bridge, and flood
 * throughput with flow control.
 */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  const env = await connectTestEnv();
  const infra = openInfra();
  const sshd = await startSshServer();
  const credentialsKey = testCredentialsKey();
  // Every heartbeat reaches the workflow here (interval 0), to measure what one costs; the
  // second api throttles them as configured by default.
  const api = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey, TERMINAL_MAX_ACTIVE_SESSIONS: 1000, TERMINAL_HEARTBEAT_MIN_INTERVAL_MS: 0 });
  const capped = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: credentialsKey });
  const server = await listenWithBridge(api.app);
  const cappedServer = await listenWithBridge(capped.app);
  const base = server.baseUrl;
  const call = async (method: string, path: string, key: string, body?: unknown, status = 200, at = base) => {
    const res = await fetch(`${at}${path}`, { method, headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status !== status) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text || '{}') as Record<string, string>;
  };
  const host = await call('POST', '/api/v1/admin/hosts', api.adminKey, { name: `bench-${randomUUID().slice(0, 8)}`, address: sshd.host, port: sshd.port, username: sshd.username, auth: { type: 'private_key', private_key: sshd.privateKey } }, 201);
  const { key } = await createUserKey(infra.pool, `bench-${randomUUID().slice(0, 8)}`, 'user', 'bench');

  const opened: { session_id: string; token: string }[] = [];
  const opens = await load(30, 1, async (i) => {
    opened.push(await call('POST', '/api/v1/terminals', key, { host_id: host.id, mode: i % 2 ? 'embedded' : 'popout' }, i < 2 ? 201 : 200) as never);
  });
  // The first two were new sessions; the rest reused them. Measure new sessions with fresh users.
  const fresh = await load(20, 1, async () => {
    const user = await createUserKey(infra.pool, `bench-${randomUUID().slice(0, 8)}`, 'user', 'bench');
    await call('POST', '/api/v1/terminals', user.key, { host_id: host.id }, 201);
  });
  const session = opened[opened.length - 1]!;
  const heartbeats = await load(100, 1, async () => void (await call('POST', `/api/v1/terminals/${session.session_id}/heartbeat`, key)));
  const heartbeats10 = await load(200, 10, async () => void (await call('POST', `/api/v1/terminals/${session.session_id}/heartbeat`, key)));

  // The default cap (3) and heartbeat interval (1 s), on the second api.
  const cappedUser = await createUserKey(infra.pool, `bench-${randomUUID().slice(0, 8)}`, 'user', 'bench');
  const hosts = await Promise.all(Array.from({ length: 25 }, async () =>
    (await call('POST', '/api/v1/admin/hosts', capped.adminKey, { name: `bench-${randomUUID().slice(0, 8)}`, address: sshd.host, port: sshd.port, username: sshd.username, auth: { type: 'private_key', private_key: sshd.privateKey } }, 201, cappedServer.baseUrl)).id!));
  const burstStart = performance.now();
  const burst = await Promise.all(hosts.flatMap((id) => ['embedded', 'popout'].map(async (mode) => {
    const res = await fetch(`${cappedServer.baseUrl}/api/v1/terminals`, { method: 'POST', headers: { Authorization: `Bearer ${cappedUser.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ host_id: id, mode }) });
    return { status: res.status, body: await res.json() as Record<string, string> };
  })));
  const burstMs = performance.now() - burstStart;
  const manyUsers = await load(20, 20, async () => {
    const user = await createUserKey(infra.pool, `bench-${randomUUID().slice(0, 8)}`, 'user', 'bench');
    await call('POST', '/api/v1/terminals', user.key, { host_id: hosts[0] }, 201, cappedServer.baseUrl);
  });
  const throttledSession = burst.find((res) => res.status === 201)!.body;
  const throttled10 = await load(200, 10, async () => void (await call('POST', `/api/v1/terminals/${throttledSession.session_id}/heartbeat`, cappedUser.key, undefined, 200, cappedServer.baseUrl)));

  const ready: number[] = [];
  let term: TerminalClient | undefined;
  for (let i = 0; i < 10; i++) {
    term?.ws.close();
    const t0 = performance.now();
    term = await TerminalClient.connect(base, session.session_id, session.token);
    await term.ready;
    ready.push(performance.now() - t0);
  }
  const roundTrips: number[] = [];
  for (let i = 0; i < 50; i++) {
    const mark = term!.output.length;
    const t0 = performance.now();
    term!.type(`echo rt-$((${i}+1000))\n`);
    await term!.waitFor(new RegExp(`^rt-${i + 1000}\\r?$`, 'm'), 10_000, mark);
    roundTrips.push(performance.now() - t0);
  }
  const bytes = 50 * 1024 * 1024;
  const mark = term!.output.length;
  const t0 = performance.now();
  term!.type(`head -c ${bytes} /dev/zero | tr '\\0' y; echo; echo flood-$((2+3))\n`);
  await term!.waitFor(/^flood-5\r?$/m, 120_000, mark);
  const floodMs = performance.now() - t0;
  term!.ws.close();

  const closes = await load(20, 1, async (i) => void (await call('DELETE', `/api/v1/terminals/${i < 2 ? opened[i]!.session_id : session.session_id}`, key)));
  const metrics = await call('GET', '/api/v1/terminals/metrics', api.adminKey);

  printTable('terminal figures (loopback sshd, real Temporal dev server and PostgreSQL)', [
    { name: 'POST /terminals, new session', samples: fresh.samples, extra: 'workflow update-with-start + row written' },
    { name: 'POST /terminals, reused', samples: opens.samples.slice(2), extra: 'token rotation update' },
    { name: 'POST heartbeat, 1 in flight', samples: heartbeats.samples, extra: 'update + local activity' },
    { name: 'POST heartbeat, 10 in flight', samples: heartbeats10.samples, extra: `${Math.round(heartbeats10.samples.length / (heartbeats10.wallMs / 1000))} req/s, errors ${heartbeats10.errors}` },
    { name: 'POST heartbeat, 10 in flight, 1 s interval', samples: throttled10.samples, extra: `${Math.round(throttled10.samples.length / (throttled10.wallMs / 1000))} req/s, errors ${throttled10.errors}: one per second reaches the workflow` },
    { name: 'POST /terminals, 20 users at once', samples: manyUsers.samples, extra: `new sessions, errors ${manyUsers.errors}` },
    { name: 'DELETE (close, then idempotent repeats)', samples: closes.samples },
    { name: 'WebSocket open → shell ready', samples: ready, extra: 'token check + SSH login + PTY' },
    { name: 'command round trip through the bridge', samples: roundTrips, extra: 'echo, keystrokes to output' },
  ]);
  const count = (status: number) => burst.filter((res) => res.status === status).length;
  console.log(`\n50 opens of one user at once, cap 3: ${count(201)} × 201, ${count(429)} × 429, other ${burst.length - count(201) - count(429)}, all answered in ${burstMs.toFixed(0)} ms`);
  console.log(`\nflood: ${(bytes / 1024 / 1024).toFixed(0)} MiB in ${(floodMs / 1000).toFixed(1)} s = ${(bytes / 1024 / 1024 / (floodMs / 1000)).toFixed(1)} MiB/s; flow-control pauses ${metrics.flow_control_pauses}; api RSS ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB`);

  await Promise.all([server.close(), cappedServer.close()]);
  await Promise.all([api.stop(), capped.stop()]);
  await sshd.stop();
  await infra.close();
  await env.teardown();
}

runBench(main);
