import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type Docker from 'dockerode';
import { randomUUID } from 'node:crypto';
import { createUserKey } from '../../../api/platform/auth';
import { sweepEndedSessionKernels } from '../../../activities/compute/nodeSweep';
import { computeSessionLabel } from '../../../activities/compute/node';
import { containerRuntimeResolver } from '../../../activities/shared/containerRuntime';
import { ignoreNotFound, sessionflowLabels } from '../../../activities/shared/docker';
import { followProgress } from '../../../activities/shared/registry';
import { createLogger } from '../../../platform/logger';
import { startComputeNode, type ComputeNodeOptions } from '../../../workers/computeNode';
import { eventually, nodeBDocker, removeComputeLeftovers } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';
import { kernelOnNodeWorkflow } from '../../helpers/nodeProbeWorkflow';
import { connectTestEnv, uniqueTaskQueue } from '../../helpers/temporal';

/** A compute node as a process runs it: its row, its heartbeat, and a worker on its own queue bound to its own engine. */
let infra: Infra;
let env: TestWorkflowEnvironment;
let nodeB: Docker;
const nodeNames: string[] = [];
const sessions: string[] = [];

beforeAll(async () => {
  infra = openInfra();
  env = await connectTestEnv();
  nodeB = nodeBDocker();
});
afterAll(async () => {
  await removeComputeLeftovers(nodeB, infra.config.SESSIONFLOW_INSTANCE, sessions, []);
  await infra.pool.query('DELETE FROM compute_nodes WHERE name = ANY($1)', [nodeNames]);
  await env.teardown();
  await infra.close();
});

function nodeOptions(overrides: Partial<ComputeNodeOptions> = {}): ComputeNodeOptions {
  const name = `test-node-${randomUUID().slice(0, 8)}`;
  nodeNames.push(name);
  return {
    config: { ...infra.config, COMPUTE_NODE_HEARTBEAT_SECONDS: 1 },
    connection: env.nativeConnection,
    docker: nodeB,
    pool: infra.pool,
    containerRuntime: containerRuntimeResolver(nodeB, infra.config.CONTAINER_RUNTIME),
    log: createLogger('silent', 'test'),
    name,
    taskQueue: uniqueTaskQueue(name),
    ...overrides,
  };
}

const nodeRow = async (name: string) =>
  (await infra.pool.query<{ scaling_group: string; task_queue: string; cpu_millis: number; memory_bytes: string; gpu: string; last_heartbeat_at: Date }>(
    'SELECT scaling_group, task_queue, cpu_millis, memory_bytes, gpu, last_heartbeat_at FROM compute_nodes WHERE name = $1', [name])).rows[0];

it('registers its row with the capacity it declares, heartbeats it while it runs, and signs off when stopped', async () => {
  const options = nodeOptions({ capacity: { cpuMillis: 3000, memoryBytes: 4 * 2 ** 30, gpu: 0.5 } });
  const node = await startComputeNode(options);
  const running = node.run();
  try {
    const registered = await nodeRow(node.name);
    expect(registered).toMatchObject({ scaling_group: 'default', task_queue: options.taskQueue, cpu_millis: 3000, memory_bytes: String(4 * 2 ** 30), gpu: '0.50' });
    const advanced = await eventually(async () => {
      const row = await nodeRow(node.name);
      return row && row.last_heartbeat_at > registered!.last_heartbeat_at ? row : undefined;
    }, 10);
    expect(advanced.last_heartbeat_at.getTime()).toBeGreaterThan(registered!.last_heartbeat_at.getTime());
    await node.shutdown();
    // Stopped on purpose: no longer alive to the scheduler, at once.
    expect((await nodeRow(node.name))!.last_heartbeat_at.getTime()).toBe(0);
  } finally {
    await node.shutdown();
    await running;
  }
});

it('refuses to register in a scaling group that does not exist', async () => {
  await expect(startComputeNode(nodeOptions({ scalingGroup: `no-such-group-${randomUUID().slice(0, 8)}` }))).rejects.toThrow(/scaling group no-such-group-\w+ does not exist/);
});

it('runs the activities scheduled on its queue against its own engine: the kernel is on node b, not on the main engine', async () => {
  const node = await startComputeNode(nodeOptions());
  const running = node.run();
  const workflowQueue = uniqueTaskQueue('node-probe');
  const workflowWorker = await Worker.create({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: workflowQueue, workflowsPath: require.resolve('../../helpers/nodeProbeWorkflow') });
  try {
    const { userId: ownerId } = await createUserKey(infra.pool, `node-${randomUUID().slice(0, 8)}`, 'user', 'test');
    const sessionId = randomUUID();
    sessions.push(sessionId);
    const containerId = await workflowWorker.runUntil(env.client.workflow.execute(kernelOnNodeWorkflow, {
      taskQueue: workflowQueue,
      workflowId: `node-probe-${sessionId}`,
      args: [node.taskQueue, {
        sessionId, ownerId, kernelId: randomUUID(), hostname: 'main1', role: 'main', idx: 1,
        imageReference: infra.config.COMPUTE_KERNEL_IMAGE, resources: { cpuMillis: 250, memoryBytes: 128 * 2 ** 20, gpu: 0 },
        env: {}, vfolders: [], clusterHosts: ['main1'],
      }],
    }));
    expect((await nodeB.getContainer(containerId).inspect()).State.Running).toBe(true);
    expect(await ignoreNotFound(infra.docker.getContainer(containerId).inspect())).toBeUndefined();
  } finally {
    await node.shutdown();
    await running;
  }
}, 120_000);

it('sweeps what ended sessions left on it — never a live session\'s kernels, nor an unknown session\'s young ones', async () => {
  const { userId } = await createUserKey(infra.pool, `sweep-${randomUUID().slice(0, 8)}`, 'user', 'test');
  const session = async (status: string) => {
    const id = randomUUID();
    await infra.pool.query(
      `INSERT INTO compute_sessions (id, owner_id, name, status, image, scaling_group, cluster_mode, cluster_size, cpu_millis, memory_bytes, gpu, params)
       VALUES ($1, $2, $3, $4, 'python:3.11', 'default', 'single-node', 1, 100, 1048576, 0, '{}')`, [id, userId, `sweep-${id.slice(0, 8)}`, status]);
    return id;
  };
  const [ended, live, unknown] = [await session('ERROR'), await session('RUNNING'), randomUUID()];
  sessions.push(ended, live, unknown);
  await followProgress(nodeB, await nodeB.pull(infra.config.COMPUTE_KERNEL_IMAGE));
  const kernelOf = async (sessionId: string) => {
    const container = await nodeB.createContainer({
      Image: infra.config.COMPUTE_KERNEL_IMAGE, Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' },
      Labels: sessionflowLabels(infra.config.SESSIONFLOW_INSTANCE, 'compute', { [computeSessionLabel]: sessionId }),
    });
    await container.start();
    return container.id;
  };
  const [endedKernel, liveKernel, unknownKernel] = [await kernelOf(ended), await kernelOf(live), await kernelOf(unknown)];
  const present = async () => Object.fromEntries(await Promise.all([endedKernel, liveKernel, unknownKernel].map(async (id) => [id, Boolean(await ignoreNotFound(nodeB.getContainer(id).inspect()))])));
  try {
    await sweepEndedSessionKernels({ docker: nodeB, pool: infra.pool, instance: infra.config.SESSIONFLOW_INSTANCE });
    expect(await present()).toEqual({ [endedKernel]: false, [liveKernel]: true, [unknownKernel]: true });
    await sweepEndedSessionKernels({ docker: nodeB, pool: infra.pool, instance: infra.config.SESSIONFLOW_INSTANCE, unknownGraceSeconds: -60 });
    expect(await present()).toEqual({ [endedKernel]: false, [liveKernel]: true, [unknownKernel]: false });
  } finally {
    await infra.pool.query('DELETE FROM users WHERE id = $1', [userId]);
  }
});
