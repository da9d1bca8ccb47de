import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startApiHarness } from '../helpers/api';
import { openInfra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';
import { load, printTable, summarise, runBench } from './stats';

/**
 * Platform figures: the api's own overhead (health, authenticated reads), the cost of starting
 * a workflow through it, and a whole self-check end to end on real infrastructure.
 */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  const env = await connectTestEnv();
  const infra = openInfra();
  const api = await startApiHarness(env, infra);
  const server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const auth = { Authorization: `Bearer ${api.adminKey}` };
  // Checks the status and reads the body (JSON when it is JSON) so the connection is reused.
  const ok = async (response: Promise<Response>, status = 200): Promise<unknown> => {
    const res = await response;
    const text = await res.text();
    if (res.status !== status) throw new Error(`status ${res.status}: ${text.slice(0, 200)}`);
    return res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  };

  const health1 = await load(500, 1, () => ok(fetch(`${base}/healthz`)).then(() => undefined));
  const health10 = await load(3000, 10, () => ok(fetch(`${base}/healthz`)).then(() => undefined));
  const ready = await load(100, 1, () => ok(fetch(`${base}/readyz`)).then(() => undefined));

  const starts = await load(50, 1, () => ok(fetch(`${base}/api/v1/admin/self-check`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"checks":["docker"]}' }), 202).then(() => undefined));

  const endToEnd: number[] = [];
  const perCheck: Record<string, number[]> = {};
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const started = (await ok(fetch(`${base}/api/v1/admin/self-check`, { method: 'POST', headers: auth }), 202)) as { id: string };
    let report: { status: string; checks: { name: string; duration_ms: number }[] };
    do {
      report = (await ok(fetch(`${base}/api/v1/admin/self-check/${started.id}`, { headers: auth }))) as typeof report;
    } while (report.status === 'RUNNING');
    endToEnd.push(performance.now() - t0);
    if (report.status !== 'PASSED') throw new Error(`self-check ${started.id} ${report.status}`);
    for (const check of report.checks) (perCheck[check.name] ??= []).push(check.duration_ms);
  }
  const reads = await load(200, 1, () => ok(fetch(`${base}/api/v1/admin/self-check/${'00000000-0000-4000-8000-000000000000'}`, { headers: auth }), 404).then(() => undefined));

  printTable('api and workflow figures (loopback, real Temporal dev server, PostgreSQL, Docker, registry)', [
    { name: 'GET /healthz, 1 in flight', samples: health1.samples, extra: `${Math.round(health1.samples.length / (health1.wallMs / 1000))} req/s` },
    { name: 'GET /healthz, 10 in flight', samples: health10.samples, extra: `${Math.round(health10.samples.length / (health10.wallMs / 1000))} req/s, errors ${health10.errors}` },
    { name: 'GET /readyz (4 dependencies)', samples: ready.samples },
    { name: 'authenticated GET, unknown self-check (404)', samples: reads.samples, extra: 'key lookup + Temporal describe' },
    { name: 'POST self-check → 202 (workflow start)', samples: starts.samples },
    { name: 'self-check end to end (POST → PASSED)', samples: endToEnd, extra: 'polled every request' },
    ...Object.entries(perCheck).map(([name, samples]) => ({ name: `  probe: ${name}`, samples, extra: 'measured inside the activity' })),
  ]);
  console.log(`\nself-check end-to-end p50 ${summarise(endToEnd).p50.toFixed(0)} ms`);

  server.close();
  await api.stop();
  await infra.close();
  await env.teardown();
}

runBench(main);
