import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { computeStoreSettingsFrom, createComputeStore, type ComputeStore } from '../../../activities/compute/store';
import { createUserKey } from '../../../api/platform/auth';
import { startComputeSession } from '../../../api/compute/sessionActions';
import { computeStateQuery, destroyUpdate, executeUpdate } from '../../../domain/compute/compute';
import { createSessionBody } from '../../../domain/compute/params';
import { createLogger } from '../../../platform/logger';
import { startComputeNode } from '../../../workers/computeNode';
import { eventually, removeComputeLeftovers } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../../helpers/temporal';
import { spawnWorkerProcess } from '../../helpers/workerProcess';

/**
 * Code running in a kernel survives the node worker that called it: the worker is killed
 * mid-execution, the activity's heartbeat stops, and the retry on the node's next worker finds
 * the run by its id in the kernel's runner — the client gets the run's result, and the code ran once.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let store: ComputeStore;
let ownerId: string;
const tag = randomUUID().slice(0, 8);
const group = `kdur-${tag}`;
const sessions: string[] = [];

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  store = createComputeStore(infra.pool, computeStoreSettingsFrom(infra.config));
  ({ userId: ownerId } = await createUserKey(infra.pool, `kdur-${tag}`, 'user', 'test'));
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

it('a node worker killed mid-execution: the next worker answers with the run\'s result, and the code ran once', async () => {
  const name = `${group}-n`;
  let doomed: ChildProcess | undefined = await spawnWorkerProcess('./computeNodeProcess.ts', 'unused', { COMPUTE_NODE_NAME: name, COMPUTE_NODE_SCALING_GROUP: group });
  const taskQueue = uniqueTaskQueue('kernel-durability');
  const worker = await createTestWorker(env, taskQueue, infra.activities);
  let successor: Awaited<ReturnType<typeof startComputeNode>> | undefined;
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
      successor = await startComputeNode({
        config: { ...infra.config, TEMPORAL_NAMESPACE: env.namespace ?? infra.config.TEMPORAL_NAMESPACE }, connection: env.nativeConnection, docker: infra.docker, pool: infra.pool,
        containerRuntime: infra.containerRuntime, log: createLogger('silent', 'kernel-durability'), name, scalingGroup: group,
      });
      successorRunning = successor.run();

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
