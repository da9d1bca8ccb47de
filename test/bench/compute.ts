import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { startApiHarness } from '../helpers/api';
import { computeSessionLabel } from '../../activities/compute/node';
import { instanceLabel } from '../../activities/shared/docker';
import { execAsWork, removeComputeLeftovers, startTestComputeNode } from '../helpers/computeNode';
import { openInfra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';
import { benchCommit, printCommitBench } from './computeCommit';
import { benchServices } from './computeServices';
import { load, printTable, summarise, runBench } from './stats';

const run = promisify(execFile);

/**
 * Compute-session figures through the real api, one real node (the main engine): create →
 * RUNNING for one kernel and for a 4-kernel single-node cluster, 50 sessions created at once,
 * destroy, beside `docker run -d` of the same image, user, limits and runtime as the floor; and
 * a one-line cell executed in a kernel, beside `docker exec` of it, and a completion; 20 files
 * of 1 MiB uploaded into a kernel and downloaded back. `COMPUTE_BENCH_ONLY=files` runs only the
 * files case.
 */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  process.env.SESSIONFLOW_INSTANCE ??= 'bench-compute';
  const env = await connectTestEnv();
  const infra = openInfra();
  const api = await startApiHarness(env, infra);
  const group = `bench-${randomUUID().slice(0, 8)}`;
  const node = await startTestComputeNode(env, infra, { group, name: `${group}-n` });
  const server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sessions: string[] = [];
  const call = async (method: string, path: string, expected: number, body?: unknown, key = api.userKey) => {
    const res = await fetch(`${base}${path}`, { method, headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status !== expected) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as { id: string; status: string };
  };
  const create = async (extra: Record<string, unknown> = {}) => {
    const session = await call('POST', '/api/v1/sessions', 201, { image: 'python:3.11', scaling_group: group, resources: { cpu: '0.1', memory: '128M' }, ...extra });
    sessions.push(session.id);
    if (session.status !== 'RUNNING') throw new Error(`session ${session.id} is ${session.status}`);
    return session.id;
  };
  const destroy = (id: string) => call('DELETE', `/api/v1/sessions/${id}`, 200);
  const kernelOf = async (id: string) => (await infra.docker.listContainers({ filters: { label: [`${instanceLabel}=${infra.config.SESSIONFLOW_INSTANCE}`, `${computeSessionLabel}=${id}`] } }))[0]!.Id;
  const image = infra.config.COMPUTE_KERNEL_IMAGE;
  const runtime = await infra.containerRuntime();

  try {
    await call('PUT', `/api/v1/admin/resource-policies/${api.userId}`, 200, { max_sessions: 200, resources: { cpu: '100', memory: '100G', gpu: '0' } }, api.adminKey);
    if (process.argv.includes('commit')) {
      const id = await create({ resources: { cpu: '1', memory: '2G' } });
      const rows = await benchCommit({ call: call as never, docker: infra.docker, sessionId: id, ownerId: api.userId, registryAddress: infra.config.REGISTRY_ADDRESS, sizesMb: [100, 1024] });
      await destroy(id);
      printCommitBench(rows);
      return;
    }
    if (process.env.COMPUTE_BENCH_ONLY === 'files') {
      const id = await create({ resources: { cpu: '1', memory: '256M' } });
      await benchFiles(base, api.userKey, id, await kernelOf(id));
      await destroy(id);
      return;
    }
    await destroy(await create()); // the image pulled to the node, the api warm

    const floorNames: string[] = [];
    const floor = await load(10, 1, async (i) => {
      const name = `sf-bench-floor-${i}-${randomUUID().slice(0, 6)}`;
      floorNames.push(name);
      await run('docker', ['run', '-d', '--name', name, '--label', `org.sessionflow.instance=${infra.config.SESSIONFLOW_INSTANCE}`, '--runtime', runtime, '--network', 'none',
        '--user', '1000:1000', '--memory', '128m', '--cpus', '0.1', '--pids-limit', '256', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--init', image, 'sleep', 'infinity']);
    });
    await run('docker', ['rm', '-f', ...floorNames]);

    const created: string[] = [];
    const single = await load(10, 1, async () => void created.push(await create()));
    const destroyed = await load(created.length, 1, async (i) => void (await destroy(created[i]!)));
    const clusters: string[] = [];
    const cluster = await load(5, 1, async () => void clusters.push(await create({ cluster_size: 4 })));
    for (const id of clusters) await destroy(id);

    // Working in a kernel: a one-line cell through the api beside `docker exec` of the same code
    // in the same kernel as `work` (the floor), and a completion.
    const cell = await create({ resources: { cpu: '1', memory: '256M' } });
    const [kernel] = await infra.docker.listContainers({ filters: { label: [`${instanceLabel}=${infra.config.SESSIONFLOW_INSTANCE}`, `${computeSessionLabel}=${cell}`] } });
    const execute = async () => {
      const answer = (await call('POST', `/api/v1/sessions/${cell}/execute`, 200, { mode: 'query', code: 'print(1 + 1)' })) as unknown as { stdout: string };
      if (answer.stdout !== '2\n') throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
    };
    await execute(); // the runner warm
    const execFloor = await load(30, 1, async () => {
      const { output } = await execAsWork(infra.docker, kernel!.Id, ['python3', '-c', 'print(1 + 1)']);
      if (output !== '2\n') throw new Error(`unexpected output ${output}`);
    });
    const executed = await load(30, 1, execute);
    const completed = await load(30, 1, async () => void (await call('POST', `/api/v1/sessions/${cell}/complete`, 200, { code: 'import o' })));
    await benchFiles(base, api.userKey, cell, kernel!.Id);
    await destroy(cell);
    // Services: start → the URL answers (computeServices.ts; runs alone as BENCH=computeServices).
    const serviceRows = await benchServices(api.app, api.userKey, await create({ resources: { cpu: '1', memory: '512M' } }), { docker: infra.docker, instance: infra.config.SESSIONFLOW_INSTANCE });

    const burst: string[] = [];
    const burstStarted = performance.now();
    const concurrent = await load(50, 50, async () => void burst.push(await create()));
    const allRunningMs = performance.now() - burstStarted;
    const burstDestroy = await load(burst.length, 10, async (i) => void (await destroy(burst[i]!)));

    printTable(`compute sessions under ${runtime} (loopback api, real Temporal dev server, PostgreSQL, one node on the main Docker engine)`, [
      { name: 'docker run -d (floor: same image, limits)', samples: floor.samples, extra: `errors ${floor.errors}` },
      { name: 'POST create → RUNNING, 1 kernel', samples: single.samples, extra: `errors ${single.errors}` },
      { name: 'POST create → RUNNING, 4-kernel cluster', samples: cluster.samples, extra: `errors ${cluster.errors}` },
      { name: '50 created at once (per request)', samples: concurrent.samples, extra: `errors ${concurrent.errors}` },
      { name: 'DELETE destroy, 1 kernel', samples: destroyed.samples, extra: `errors ${destroyed.errors}` },
      { name: 'DELETE destroy, 10 in flight', samples: burstDestroy.samples, extra: `errors ${burstDestroy.errors}` },
      { name: 'docker exec python3 -c in a kernel (floor)', samples: execFloor.samples, extra: `errors ${execFloor.errors}` },
      { name: 'POST execute, query, one line', samples: executed.samples, extra: `errors ${executed.errors}` },
      { name: 'POST complete, import o', samples: completed.samples, extra: `errors ${completed.errors}` },
      ...serviceRows,
    ]);
    const ratio = summarise(single.samples).p50 / summarise(floor.samples).p50;
    console.log(`\nsingle create p50 ${summarise(single.samples).p50.toFixed(0)} ms = ${ratio.toFixed(2)}× the docker run -d floor (${summarise(floor.samples).p50.toFixed(0)} ms)`);
    console.log(`execute p50 ${summarise(executed.samples).p50.toFixed(0)} ms = ${(summarise(executed.samples).p50 / summarise(execFloor.samples).p50).toFixed(2)}× the docker exec floor (${summarise(execFloor.samples).p50.toFixed(0)} ms)`);
    console.log(`4-kernel cluster p50 ${summarise(cluster.samples).p50.toFixed(0)} ms; 50 at once: all RUNNING in ${allRunningMs.toFixed(0)} ms, errors ${concurrent.errors}, running ${burst.length}/50`);
  } finally {
    server.close();
    await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, sessions, []);
    await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = $1', [api.userId]);
    await node.stop();
    await api.stop();
    await infra.close();
    await env.teardown();
  }
}

/**
 * 20 files of 1 MiB (the most one upload takes) into the kernel's work directory, as JSON
 * (base64) and as multipart/form-data, and the 20 MiB back as one tar, beside `docker exec -i`
 * of the same 20 MiB into a file of the kernel as the floor: p50 of 5 runs each, and the
 * payload's rate at that p50.
 */
async function benchFiles(base: string, key: string, sessionId: string, containerId: string): Promise<void> {
  const files = Array.from({ length: 20 }, (_, i) => ({ name: `bench/f${i}.bin`, data: randomBytes(1024 * 1024) }));
  const payloadMiB = files.length;
  const url = `${base}/api/v1/sessions/${sessionId}/files`;
  const auth = { Authorization: `Bearer ${key}` };
  const expectOk = async (res: Response) => {
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`${res.status} ${body.toString().slice(0, 300)}`);
    return body;
  };
  const json = JSON.stringify({ files: files.map((file) => ({ name: file.name, content: file.data.toString('base64') })) });
  const uploadJson = async () => void (await expectOk(await fetch(url, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: json })));
  const uploadMultipart = async () => {
    const form = new FormData();
    for (const file of files) form.append('files', new Blob([file.data]), file.name);
    await expectOk(await fetch(url, { method: 'POST', headers: auth, body: form }));
  };
  const downloadTar = async () => {
    const archive = await expectOk(await fetch(`${url}/download`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['bench'] }) }));
    if (archive.length < payloadMiB * 1024 * 1024) throw new Error(`a tar of ${archive.length} bytes`);
  };
  const floorCopy = () => new Promise<void>((resolve, reject) => {
    const child = spawn('docker', ['exec', '-i', '--user', '1000:1000', containerId, 'sh', '-c', 'cat > /home/work/floor.bin'], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker exec exited ${code}`))));
    child.stdin.end(Buffer.concat(files.map((file) => file.data)));
  });
  await uploadJson(); // the staging tables and the kernel's page cache warm
  const floor5 = await load(5, 1, floorCopy);
  const json5 = await load(5, 1, uploadJson);
  const multipart5 = await load(5, 1, uploadMultipart);
  const download5 = await load(5, 1, downloadTar);
  const rate = (samples: number[]) => `${(payloadMiB / (summarise(samples).p50 / 1000)).toFixed(1)} MiB/s`;
  printTable('session files: 20 × 1 MiB through the api (staged in PostgreSQL, docker exec into the kernel)', [
    { name: 'docker exec -i: 20 MiB into a file (floor)', samples: floor5.samples, extra: `${rate(floor5.samples)}, errors ${floor5.errors}` },
    { name: 'POST files, 20 × 1 MiB, JSON (base64)', samples: json5.samples, extra: `${rate(json5.samples)}, errors ${json5.errors}` },
    { name: 'POST files, 20 × 1 MiB, multipart', samples: multipart5.samples, extra: `${rate(multipart5.samples)}, errors ${multipart5.errors}` },
    { name: 'POST files/download, the 20 MiB as a tar', samples: download5.samples, extra: `${rate(download5.samples)}, errors ${download5.errors}` },
  ]);
}

runBench(main);
