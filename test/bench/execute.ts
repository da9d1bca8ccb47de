import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { createUserKey } from '../../api/platform/auth';
import { startApiHarness, type ApiHarness } from '../helpers/api';
import { removeExecutionPools } from '../helpers/executionPools';
import { openInfra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';
import { load, printTable, summarise } from './stats';

const run = promisify(execFile);
const program = 'print(sum(range(1000)))';
const expected = '499500\n';

/**
 * Code execution figures, side by side: (a) our api (pool + Temporal workflows, eager start),
 * (b) the floor — `docker exec` of the same program in a running container, (c) the naive
 * baseline — `docker run --rm` per request. Loopback only; every loop is bounded. Every
 * container runs under the runtime CONTAINER_RUNTIME resolves to (run it once per runtime to
 * compare gVisor with runc).
 */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  const env = await connectTestEnv();
  const infra = openInfra();
  const image = infra.config.EXECUTION_IMAGE;
  const runtime = await infra.containerRuntime();
  // One key drives the platform's throughput here, so its fair share is the whole pool.
  const api = await startApiHarness(env, infra, { EXECUTION_READY_SESSIONS: 2, EXECUTION_MAX_CONTAINERS: 16, EXECUTION_MAX_IN_FLIGHT_PER_USER: 16, EXECUTION_ACQUIRE_WAIT_MS: 60_000, USE_LOCAL_EXECUTOR: false }, { eagerStart: true });
  const coldApi = await startApiHarness(env, infra, { EXECUTION_READY_SESSIONS: 0, EXECUTION_MAX_CONTAINERS: 16, EXECUTION_MAX_SESSIONS_PER_USER: 16, EXECUTION_COOLDOWN_SECONDS: 1, USE_LOCAL_EXECUTOR: false }, { eagerStart: true });
  // Default fair shares, and a cap's worth of idle sessions kept by other users.
  const crowdedApi = await startApiHarness(env, infra, { EXECUTION_READY_SESSIONS: 0, EXECUTION_MAX_CONTAINERS: 8, EXECUTION_COOLDOWN_SECONDS: 600, EXECUTION_ACQUIRE_WAIT_MS: 60_000, USE_LOCAL_EXECUTOR: false }, { eagerStart: true });
  const harnesses: ApiHarness[] = [api, coldApi, crowdedApi];
  const floorName = `sf-exec-bench-floor-${randomUUID().slice(0, 8)}`;
  try {
    const servers = await Promise.all(harnesses.map(async (h) => {
      const server = h.app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }));
    const apiErrors = new Map<string, number>();
    const url = (i: number) => `http://127.0.0.1:${(servers[i]!.address() as AddressInfo).port}/api/v2/execute`;
    const post = async (i: number, key: string, extra: Record<string, unknown> = {}) => {
      const res = await fetch(url(i), { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ language: 'python', version: '3', files: [{ content: program }], ...extra }) });
      const body = (await res.json()) as { run?: { stdout: string } };
      if (res.status !== 200 || body.run?.stdout !== expected) {
        const error = `api answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`;
        apiErrors.set(error, (apiErrors.get(error) ?? 0) + 1);
        throw new Error(error);
      }
    };

    // Warm-up: the pool started and at its cap of 16 containers, so the warm rows create none.
    await load(5, 1, () => post(0, api.userKey));
    await load(48, 16, () => post(0, api.userKey));
    await run('docker', ['run', '-d', '--name', floorName, '--label', `org.sessionflow.instance=${infra.config.SESSIONFLOW_INSTANCE}`, '--runtime', runtime, '--network', 'none', image, 'sleep', 'infinity']);
    const floor = () => run('docker', ['exec', floorName, 'python3', '-c', program]).then(({ stdout }) => { if (stdout !== expected) throw new Error(stdout); });
    const naive = () => run('docker', ['run', '--rm', '--runtime', runtime, '--network', 'none', image, 'python3', '-c', program]).then(({ stdout }) => { if (stdout !== expected) throw new Error(stdout); });

    // (d) the runner alone: the same job sent straight to a warm container (no HTTP, no Temporal), so a − d is their overhead.
    const direct = await infra.activities.createExecutionContainer({ name: `sf-exec-bench-direct-${randomUUID().slice(0, 8)}`, image, runtime: 'python', pool: 'bench-direct' });
    const runnerAlone = async () => {
      const job = { requestId: randomUUID(), language: 'python', version: '3.11.2', files: [{ name: 'main.py', content: Buffer.from(program).toString('base64') }], stdin: '', args: [], outputLimit: 65_536, run: { command: ['python3', '-u', 'main.py'], timeoutMs: 3000, memoryLimit: -1 } };
      const { result } = await infra.activities.runInContainer({ containerId: direct, job, ownerId: api.userId, historyOutputCap: 4096 });
      if (result.run?.stdout !== expected) throw new Error(JSON.stringify(result));
    };

    const rows: { name: string; samples: number[]; extra?: string }[] = [];
    const p50: Record<string, number> = {};
    for (const [concurrency, total] of [[1, 40], [10, 60], [50, 100]] as const) {
      for (const [name, task] of [['a api', () => post(0, api.userKey)], ['b docker exec', floor], ['c docker run --rm', naive]] as const) {
        const n = name.startsWith('c') ? Math.min(total, 50) : total;
        const result = await load(n, concurrency, task);
        const throughput = result.samples.length / (result.wallMs / 1000);
        rows.push({ name: `${name}, ${concurrency} in flight`, samples: result.samples, extra: `${throughput.toFixed(1)} req/s, errors ${result.errors}` });
        p50[`${name}@${concurrency}`] = summarise(result.samples).p50;
      }
    }
    const alone = await load(40, 1, runnerAlone);
    rows.push({ name: 'd runner alone, 1 in flight', samples: alone.samples, extra: `errors ${alone.errors}` });
    await infra.activities.removeExecutionContainer({ containerId: direct });
    // Cold: a new session id on a pool with no ready container, so each request creates one.
    const cold: number[] = [];
    for (let i = 0; i < 8; i++) {
      const t0 = performance.now();
      await post(1, coldApi.userKey, { session_id: `cold-${i}` });
      cold.push(performance.now() - t0);
    }
    rows.push({ name: 'a api, cold (new container per request)', samples: cold });

    // Idle sessions must not starve everyone: two users keep 4 sessions each (the whole cap of 8,
    // cooling down for 10 minutes), then a third sends 50 stateless requests at once.
    const keepers = await Promise.all([0, 1].map((i) => createUserKey(infra.pool, `bench-idle-${i}-${randomUUID().slice(0, 6)}`, 'user', 'test')));
    for (let i = 0; i < 8; i++) await post(2, keepers[i % 2]!.key, { session_id: `idle-${i}` });
    const crowded = await load(50, 50, () => post(2, crowdedApi.userKey));
    rows.push({ name: 'a api, 50 in flight, cap held by 8 idle sessions', samples: crowded.samples, extra: `errors ${crowded.errors}` });

    printTable(`code execution under ${runtime}: warm and cold latency, throughput (python3, loopback)`, rows);
    console.log('\nratios of p50 latency (warm):');
    for (const c of [1, 10, 50]) {
      const a = p50[`a api@${c}`]!;
      console.log(`  ${String(c).padStart(2)} in flight: a/b ${(a / p50[`b docker exec@${c}`]!).toFixed(2)}  a/c ${(a / p50[`c docker run --rm@${c}`]!).toFixed(2)}`);
    }
    console.log(`  HTTP + Temporal overhead at 1 in flight (a − d): ${(p50['a api@1']! - summarise(alone.samples).p50).toFixed(0)} ms`);
    console.log(`  cold start p50 ${summarise(cold).p50.toFixed(0)} ms`);
    for (const [error, count] of apiErrors) console.log(`api error ×${count}: ${error}`);
    for (const server of servers) server.close();
  } finally {
    await run('docker', ['rm', '-f', floorName]).catch(() => undefined);
    for (const h of harnesses) {
      await removeExecutionPools(env.client, infra, h.taskQueue);
      await h.stop();
    }
    await infra.close();
    await env.teardown();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
