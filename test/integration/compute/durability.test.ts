import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeStoreSettingsFrom, createComputeStore, type ComputeStore } from '../../../activities/compute/store';
import { computeSessionLabel } from '../../../activities/compute/node';
import { instanceLabel } from '../../../activities/shared/docker';
import { createUserKey } from '../../../api/platform/auth';
import { startComputeSession } from '../../../api/compute/sessionActions';
import { createCommitStore } from '../../../activities/compute/commitStore';
import { computeStateQuery, destroyUpdate, executeUpdate, type ComputeSessionState } from '../../../domain/compute/compute';
import { convertTarget, startImageCommitUpdate, type CommitProgress } from '../../../domain/compute/imageCommit';
import { createSessionBody } from '../../../domain/compute/params';
import { customSearchAttributes } from '../../../domain/shared/searchAttributes';
import { createLogger } from '../../../platform/logger';
import { createSessionflowWorker } from '../../../workers/createWorker';
import { startComputeNode, type ComputeNode } from '../../../workers/computeNode';
import { eventually, removeComputeLeftovers } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';
import { freePort } from '../../helpers/ports';
import { connectTestEnv, createTestWorker, uniqueTaskQueue, workflowBundlePath } from '../../helpers/temporal';
import { spawnWorkerProcess } from '../../helpers/workerProcess';

/**
 * What a compute session survives, with real activities on a real node (the main engine): the
 * worker running its workflow killed while its kernels are being made, the node's worker killed
 * while code runs in a kernel (the retry finds the run by its id in the kernel's runner: the
 * client gets its result, and the code ran once), the node's worker killed while it pushes a
 * converted session (the push is tried again and the convert finishes once), and the Temporal
 * server itself killed and started again.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let store: ComputeStore;
let ownerId: string;
const tag = randomUUID().slice(0, 8);
const group = `dur-${tag}`;
const sessions: string[] = [];
const log = createLogger('silent', 'compute-durability');

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  store = createComputeStore(infra.pool, computeStoreSettingsFrom(infra.config));
  ({ userId: ownerId } = await createUserKey(infra.pool, `dur-${tag}`, 'user', 'test'));
  await store.createScalingGroup(group, '');
}, 60_000);
afterAll(async () => {
  await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, sessions, []);
  await infra.pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
  await infra.pool.query('DELETE FROM compute_nodes WHERE scaling_group = $1', [group]);
  await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = $1', [group]);
  await infra.close();
  await env.teardown();
});

async function admit(body: Record<string, unknown>) {
  const input = await store.admitSession({ ownerId, params: createSessionBody.parse({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' }, ...body }) });
  sessions.push(input.sessionId);
  return input;
}

async function startNode(connection: NativeConnection, namespace: string, name: string): Promise<{ node: ComputeNode; running: Promise<void> }> {
  const node = await startComputeNode({
    config: { ...infra.config, TEMPORAL_NAMESPACE: namespace }, connection, docker: infra.docker, pool: infra.pool, containerRuntime: infra.containerRuntime, log, name, scalingGroup: group,
    capacity: { cpuMillis: 8000, memoryBytes: 8 * 2 ** 30, gpu: 0 },
  });
  return { node, running: node.run() };
}

async function until(query: () => Promise<ComputeSessionState>, done: (state: ComputeSessionState) => boolean, seconds = 60): Promise<ComputeSessionState> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const state = await query().catch(() => undefined);
    if (state && (done(state) || Date.now() > deadline)) return state;
    if (Date.now() > deadline) throw new Error('no answer from the session');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function containersOf(sessionId: string) {
  return infra.docker.listContainers({ all: true, filters: { label: [`${instanceLabel}=${infra.config.SESSIONFLOW_INSTANCE}`, `${computeSessionLabel}=${sessionId}`] } });
}

it('a worker killed while the kernels are being made leaves no duplicate and no orphan: the next worker brings the session to RUNNING', async () => {
  const { node, running } = await startNode(env.nativeConnection, env.namespace!, `${group}-a`);
  const taskQueue = uniqueTaskQueue('compute-durability');
  let doomed: ChildProcess | undefined = await spawnWorkerProcess('./sessionflowWorkerProcess.ts', taskQueue);
  let worker: Worker | undefined;
  try {
    // The bootstrap keeps the session CREATING for a while: the kill lands there.
    const input = await admit({ cluster_size: 3, bootstrap_script: 'sleep 3' });
    const handle = await startComputeSession(env.client, { taskQueue, input });
    await until(() => handle.query(computeStateQuery), (state) => state.status === 'CREATING' && state.kernels.some((k) => k.containerId));
    doomed.kill('SIGKILL');
    doomed = undefined;

    worker = await createTestWorker(env, taskQueue, infra.activities);
    await worker.runUntil(async () => {
      const state = await until(() => handle.query(computeStateQuery), (s) => s.status === 'RUNNING' || s.status === 'ERROR', 90);
      expect([state.status, state.reason]).toEqual(['RUNNING', undefined]);
      const containers = await containersOf(input.sessionId);
      expect(containers.map((c) => c.Labels['org.sessionflow.compute-hostname']).sort()).toEqual(['main1', 'sub1', 'sub2']);
      expect(containers.every((c) => c.State === 'running')).toBe(true);
      const recorded = (await store.session(input.sessionId, undefined))!.kernels.map((k) => k.container_id).sort();
      expect(recorded).toEqual(containers.map((c) => c.Id).sort());

      await handle.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
      await handle.result();
    });
    expect(await containersOf(input.sessionId)).toEqual([]);
  } finally {
    doomed?.kill('SIGKILL');
    await node.shutdown();
    await running;
  }
}, 180_000);

it('a Temporal server killed and started again loses no session: it answers, and is destroyed, as before', async () => {
  const server = await privateTemporalServer();
  let connection: NativeConnection | undefined;
  try {
    connection = await NativeConnection.connect({ address: server.address });
    const client = new Client({ connection, namespace: 'default' });
    const taskQueue = `compute-durability-${tag}`;
    const worker = await createSessionflowWorker({ connection, namespace: 'default', taskQueue, activities: infra.activities, workflowBundlePath: workflowBundlePath() });
    const { node, running } = await startNode(connection, 'default', `${group}-p`);
    const workerRun = worker.run();
    try {
      const input = await admit({});
      const handle = await startComputeSession(client, { taskQueue, input });
      const started = await until(() => handle.query(computeStateQuery), (s) => s.status === 'RUNNING' || s.status === 'ERROR');
      expect([started.status, started.reason]).toEqual(['RUNNING', undefined]);

      await server.restart();
      const after = await until(() => handle.query(computeStateQuery), (s) => s.status === 'RUNNING', 60);
      expect(after).toMatchObject({ status: 'RUNNING', kernels: [expect.objectContaining({ hostname: 'main1', containerId: expect.any(String) })] });
      await handle.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
      expect((await handle.result()).status).toBe('TERMINATED');
      expect(await containersOf(input.sessionId)).toEqual([]);
    } finally {
      worker.shutdown();
      await node.shutdown();
      await Promise.all([workerRun, running]);
    }
  } finally {
    await connection?.close();
    await server.stop();
  }
}, 240_000);

it('a node worker killed mid-execution: the next worker answers with the run\'s result, and the code ran once', async () => {
  const name = `${group}-k`;
  let doomed: ChildProcess | undefined = await spawnWorkerProcess('./computeNodeProcess.ts', 'unused', { COMPUTE_NODE_NAME: name, COMPUTE_NODE_SCALING_GROUP: group });
  const taskQueue = uniqueTaskQueue('kernel-durability');
  const worker = await createTestWorker(env, taskQueue, infra.activities);
  let successor: ComputeNode | undefined;
  let successorRunning: Promise<void> | undefined;
  try {
    await worker.runUntil(async () => {
      const input = await store.admitSession({ ownerId, params: createSessionBody.parse({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' } }) });
      sessions.push(input.sessionId);
      const handle = await startComputeSession(env.client, { taskQueue, input });
      await eventually(async () => ((await handle.query(computeStateQuery)).status === 'RUNNING' ? true : undefined), 90);
      await handle.executeUpdate(executeUpdate, { args: [{ runId: 'setup', code: 'runs = 0', timeoutMs: 10_000 }] });

      const pending = handle.executeUpdate(executeUpdate, { args: [{ runId: 'survivor', code: 'runs += 1\nimport time\ntime.sleep(3)\nruns', timeoutMs: 60_000 }] });
      // The run has reached the kernel: its code is sleeping when the node's worker dies.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      doomed!.kill('SIGKILL');
      doomed = undefined;
      ({ node: successor, running: successorRunning } = await startNode(env.nativeConnection, env.namespace!, name));

      expect(await pending).toMatchObject({ runId: 'survivor', exitCode: 0, result: 1 });
      expect((await handle.executeUpdate(executeUpdate, { args: [{ runId: 'check', code: 'runs', timeoutMs: 10_000 }] })).result).toBe(1);
      await handle.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
      expect((await handle.result()).status).toBe('TERMINATED');
    });
  } finally {
    doomed?.kill('SIGKILL');
    await successor?.shutdown();
    await successorRunning;
  }
}, 180_000);

it('a node worker killed mid-push: the next worker pushes again (the registry keeps the layers it has), and the convert finishes once', async () => {
  const name = `${group}-p`;
  let doomed: ChildProcess | undefined = await spawnWorkerProcess('./computeNodeProcess.ts', 'unused', { COMPUTE_NODE_NAME: name, COMPUTE_NODE_SCALING_GROUP: group });
  const taskQueue = uniqueTaskQueue('push-durability');
  const worker = await createTestWorker(env, taskQueue, infra.activities);
  const commits = createCommitStore(infra.pool);
  const registryAddress = infra.config.REGISTRY_ADDRESS!;
  const imageName = `durable-${tag}:v1`;
  let successor: ComputeNode | undefined;
  let successorRunning: Promise<void> | undefined;
  try {
    await worker.runUntil(async () => {
      const input = await admit({ resources: { cpu: '1', memory: '512M' } });
      const handle = await startComputeSession(env.client, { taskQueue, input });
      await eventually(async () => ((await handle.query(computeStateQuery)).status === 'RUNNING' ? true : undefined), 90);
      // Data no registry has seen (random), large enough that the push is still going when the node dies.
      await handle.executeUpdate(executeUpdate, { args: [{ runId: 'fill', code: "import os\nwith open('/home/work/blob', 'wb') as f:\n    for _ in range(12): f.write(os.urandom(16 << 20))", timeoutMs: 120_000 }] });

      const commitId = randomUUID();
      await commits.begin({ commitId, sessionId: input.sessionId, ownerId, kind: 'convert', imageName, registry: 'local', defaultMaxCustomizedImages: 10 });
      const { workflowId } = await handle.executeUpdate(startImageCommitUpdate, { args: [{ commitId, kind: 'convert', imageName, registry: { name: 'local', address: registryAddress } }] });
      await eventually(async () => {
        const row = await commits.get(commitId, input.sessionId);
        const progress = row?.progress as Partial<CommitProgress> | undefined;
        return progress?.phase === 'pushing' && (progress.bytesPushed ?? 0) > 0 ? true : undefined;
      }, 180);
      doomed!.kill('SIGKILL');
      doomed = undefined;
      ({ node: successor, running: successorRunning } = await startNode(env.nativeConnection, env.namespace!, name));

      const commit = env.client.workflow.getHandle(workflowId);
      expect(await commit.result()).toMatchObject({ status: 'finished', reference: convertTarget(registryAddress, ownerId, imageName).reference });
      const row = await commits.get(commitId, input.sessionId);
      expect([row!.status, row!.error]).toEqual(['finished', null]);
      // Pushed more than once (the first attempt timed out on its heartbeat), registered once.
      const events = (await commit.fetchHistory()).events!;
      // Two pushes: the image to the commit's staging tag (tried again by the next worker), then the owner's tag.
      const pushes = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'pushCommitImage');
      expect(pushes).toHaveLength(2);
      const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(pushes[0]!.eventId));
      expect(started?.activityTaskStartedEventAttributes?.attempt).toBeGreaterThan(1);
      const { rows } = await infra.pool.query('SELECT name FROM compute_images WHERE owner_id = $1 AND name = $2', [ownerId, imageName]);
      expect(rows).toHaveLength(1);
      const reference = convertTarget(registryAddress, ownerId, imageName);
      const manifest = await fetch(`http://${registryAddress}/v2/${reference.repo.slice(registryAddress.length + 1)}/manifests/${reference.tag}`, {
        method: 'HEAD', headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
      });
      expect(manifest.status).toBe(200);

      await handle.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
      expect((await handle.result()).status).toBe('TERMINATED');
    });
  } finally {
    doomed?.kill('SIGKILL');
    await successor?.shutdown();
    await successorRunning;
    await infra.pool.query('DELETE FROM compute_images WHERE owner_id = $1', [ownerId]);
  }
}, 300_000);

/** A Temporal dev server of this test's own (port, SQLite file), which it may kill and start again. */
async function privateTemporalServer() {
  const bin = process.env.TEMPORAL_BIN ?? join(process.env.HOME ?? '/root', '.sessionflow/bin/temporal');
  const dir = mkdtempSync(join(tmpdir(), 'sf-temporal-'));
  const port = await freePort();
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless', '--db-filename', join(dir, 'temporal.db'), '--log-level', 'error',
    ...customSearchAttributes.flatMap(({ name }) => ['--search-attribute', `${name}=Keyword`])];
  let child: ChildProcess | undefined;
  const address = `127.0.0.1:${port}`;
  const start = async () => {
    child = spawn(bin, args, { stdio: 'ignore' });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const probe = await NativeConnection.connect({ address });
        await probe.close();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  };
  const kill = async () => {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child?.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    address,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
