import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { computeSessionLabel } from '../../activities/compute/node';
import { instanceLabel } from '../../activities/shared/docker';
import { startApiHarness } from '../helpers/api';
import { execAsWork, removeComputeLeftovers, startTestComputeNode } from '../helpers/computeNode';
import { openInfra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';
import { load, printTable, summarise, runBench } from './stats';

/**
 * Query-mode execution of a one-line cell through the real api (the session workflow's update,
 * the node activity, the kernel runner) beside `docker exec` of the same code in the same
 * kernel as `work` through the Docker API (the floor). One node on the main engine.
 * `BENCH=kernelExecute scripts/bench.sh`.
 */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  process.env.SESSIONFLOW_INSTANCE ??= 'bench-kernel';
  const env = await connectTestEnv();
  const infra = openInfra();
  const api = await startApiHarness(env, infra);
  const group = `bench-${randomUUID().slice(0, 8)}`;
  const node = await startTestComputeNode(env, infra, { group, name: `${group}-n` });
  const server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let sessionId: string | undefined;
  const call = async (method: string, path: string, expected: number, body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers: { Authorization: `Bearer ${api.userKey}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status !== expected) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  try {
    const session = await call('POST', '/api/v1/sessions', 201, { image: 'python:3.11', scaling_group: group, resources: { cpu: '1', memory: '256M' } });
    sessionId = session.id as string;
    const [kernel] = await infra.docker.listContainers({ filters: { label: [`${instanceLabel}=${infra.config.SESSIONFLOW_INSTANCE}`, `${computeSessionLabel}=${sessionId}`] } });
    const runtime = await infra.containerRuntime();
    const execute = async () => {
      const answer = await call('POST', `/api/v1/sessions/${sessionId}/execute`, 200, { mode: 'query', code: 'print(1 + 1)' });
      if (answer.stdout !== '2\n') throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
    };
    await execute(); // the runner warm
    const floor = await load(30, 1, async () => {
      const { output } = await execAsWork(infra.docker, kernel!.Id, ['python3', '-c', 'print(1 + 1)']);
      if (output !== '2\n') throw new Error(`unexpected output ${output}`);
    });
    const viaApi = await load(30, 1, execute);
    const complete = await load(30, 1, async () => void (await call('POST', `/api/v1/sessions/${sessionId}/complete`, 200, { code: 'import o' })));
    printTable(`kernel execution under ${runtime} (loopback api, real Temporal dev server, one node on the main Docker engine)`, [
      { name: 'docker exec python3 -c (floor)', samples: floor.samples, extra: `errors ${floor.errors}` },
      { name: 'POST execute, query, one line', samples: viaApi.samples, extra: `errors ${viaApi.errors}` },
      { name: 'POST complete, import o', samples: complete.samples, extra: `errors ${complete.errors}` },
    ]);
    const ratio = summarise(viaApi.samples).p50 / summarise(floor.samples).p50;
    console.log(`\nexecute p50 ${summarise(viaApi.samples).p50.toFixed(0)} ms = ${ratio.toFixed(2)}× the docker exec floor (${summarise(floor.samples).p50.toFixed(0)} ms)`);
  } finally {
    server.close();
    if (sessionId) await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, [sessionId], []);
    await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = $1', [api.userId]);
    await node.stop();
    await api.stop();
    await infra.close();
    await env.teardown();
  }
}

runBench(main);
