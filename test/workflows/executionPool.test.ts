import { WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { acquireUpdate, makePoolWorkflowId, poolStateQuery, releaseSignal, type AcquireRequest } from '../../domain/execution/execution';
import { poolSettingsFrom } from '../../platform/executionSettings';
import type { executionPoolWorkflow } from '../../workflows/execution/executionPool';
import { removeExecutionPools } from '../helpers/executionPools';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueTaskQueue('execution-pool');
const poolId = makePoolWorkflowId(taskQueue, 'python');

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  worker = await createTestWorker(env, taskQueue, infra.activities);
  running = worker.run();
});
afterAll(async () => {
  await removeExecutionPools(env.client, infra, taskQueue);
  worker.shutdown();
  await running;
  await infra.close();
  await env.teardown();
});

// One container at most, and a default wait longer than the test may take: a refusal can only come from the request's own wait.
const settings = () => ({ ...poolSettingsFrom(infra.config, 'python'), readySessions: 0, maxContainers: 1, acquireWaitMs: 600_000 });
const acquire = (request: AcquireRequest) => env.client.workflow.executeUpdateWithStart(acquireUpdate, {
  args: [request],
  startWorkflowOperation: new WithStartWorkflowOperation<typeof executionPoolWorkflow>('executionPoolWorkflow', {
    workflowId: poolId, taskQueue, workflowIdConflictPolicy: 'USE_EXISTING', args: [{ settings: settings(), containers: [], leasesHandedOut: 0 }],
  }),
});

describe('executionPoolWorkflow', () => {
  it('hands the same container again to a lease asked for twice, without creating another', async () => {
    const first = await acquire({ leaseId: 'lease-1' });
    const again = await acquire({ leaseId: 'lease-1' });
    expect(again).toEqual({ leaseId: 'lease-1', containerId: first.containerId, cold: false });
    const state = await env.client.workflow.getHandle(poolId).query(poolStateQuery);
    expect(state.containers).toEqual([expect.objectContaining({ containerId: first.containerId, state: 'leased', leaseId: 'lease-1' })]);
    expect(state.leasesHandedOut).toBe(1);
  });

  it('keeps a request at the cap waiting only as long as the request says', async () => {
    const refused = await acquire({ leaseId: 'lease-2', waitMs: 200 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause).toMatchObject({ type: 'PoolExhausted' });
  });
});

describe('executionPoolWorkflow across a worker restart and continue-as-new', () => {
  const queue = uniqueTaskQueue('execution-pool-restart');
  const id = makePoolWorkflowId(queue, 'python');
  afterAll(() => removeExecutionPools(env.client, infra, queue));
  const lease = (leaseId: string) => env.client.workflow.executeUpdateWithStart(acquireUpdate, {
    args: [{ leaseId }],
    startWorkflowOperation: new WithStartWorkflowOperation<typeof executionPoolWorkflow>('executionPoolWorkflow', {
      workflowId: id, taskQueue: queue, workflowIdConflictPolicy: 'USE_EXISTING',
      // Two leases per run, so the third hand-out happens in a run continued as new.
      args: [{ settings: { ...settings(), maxContainers: 2, leasesPerRun: 2 }, containers: [], leasesHandedOut: 0 }],
    }),
  });
  const release = (leaseId: string) => env.client.workflow.getHandle(id).signal(releaseSignal, { leaseId, retire: false });

  it('keeps its containers and leases, and hands the same containers out again', async () => {
    const first = await createTestWorker(env, queue, infra.activities);
    const a = await first.runUntil(async () => {
      const leased = await lease('a');
      await release('a');
      return leased;
    });
    const { runId: firstRun } = await env.client.workflow.getHandle(id).describe();

    // A new worker process, as after a restart: the pool's state comes back from its history.
    const second = await createTestWorker(env, queue, infra.activities);
    await second.runUntil(async () => {
      const b = await lease('b');
      expect(b).toMatchObject({ containerId: a.containerId, cold: false });
      await release('b');
      const c = await lease('c');
      expect(c).toMatchObject({ containerId: a.containerId, cold: false });
      const described = await env.client.workflow.getHandle(id).describe();
      expect(described.runId).not.toBe(firstRun);
      const state = await env.client.workflow.getHandle(id).query(poolStateQuery);
      expect(state.containers).toEqual([expect.objectContaining({ containerId: a.containerId, state: 'leased', leaseId: 'c' })]);
    });
  });
});
