import { WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { acquireUpdate, findRuntime, makePoolWorkflowId, poolStateQuery, releaseSignal, type AcquireRequest, type Lease, type PoolContainer, type PoolSettings, type PoolState } from '../../domain/execution/execution';
import { createUserKey } from '../../api/platform/auth';
import { poolSettingsFrom } from '../../platform/executionSettings';
import type { executionPoolWorkflow } from '../../workflows/execution/executionPool';
import { eventually } from '../helpers/api';
import { executionJob, removedByDocker, removeExecutionPools } from '../helpers/executionPools';
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

// No time skipping offline (the time-skipping test server is a downloaded binary): cooldowns
// and lease TTLs come from the pool's input, in seconds, and these tests wait them out.
interface TimedPool {
  id: string;
  /** Starts the pool without a request, with containers carried over (as across continue-as-new). */
  start(containers: PoolContainer[]): Promise<unknown>;
  lease(request: AcquireRequest): Promise<Lease>;
  release(leaseId: string): Promise<void>;
  stateWhen(done: (state: PoolState) => boolean): Promise<PoolState>;
  timersStarted(): Promise<number>;
}
/** A pool of its own with these settings, on a worker of its own (with these activities); its containers go afterwards. */
async function withTimedPool(overrides: Partial<PoolSettings>, test: (pool: TimedPool) => Promise<void>, activities = infra.activities): Promise<void> {
  const queue = uniqueTaskQueue('execution-pool-timers');
  const id = makePoolWorkflowId(queue, 'python');
  const poolSettings = { ...settings(), readySessions: 0, maxContainers: 2, ...overrides };
  const timedWorker = await createTestWorker(env, queue, activities);
  const handle = () => env.client.workflow.getHandle(id);
  try {
    await timedWorker.runUntil(() => test({
      id,
      start: (containers) => env.client.workflow.start<typeof executionPoolWorkflow>('executionPoolWorkflow', {
        workflowId: id, taskQueue: queue, args: [{ settings: poolSettings, containers, leasesHandedOut: 0 }],
      }),
      lease: (request) => env.client.workflow.executeUpdateWithStart(acquireUpdate, {
        args: [request],
        startWorkflowOperation: new WithStartWorkflowOperation<typeof executionPoolWorkflow>('executionPoolWorkflow', {
          workflowId: id, taskQueue: queue, workflowIdConflictPolicy: 'USE_EXISTING', args: [{ settings: poolSettings, containers: [], leasesHandedOut: 0 }],
        }),
      }),
      release: (leaseId) => handle().signal(releaseSignal, { leaseId, retire: false }),
      stateWhen: (done) => eventually(() => handle().query(poolStateQuery), done, 20_000),
      timersStarted: async () => ((await handle().fetchHistory()).events ?? []).filter((event) => event.timerStartedEventAttributes).length,
    }));
  } finally {
    await removeExecutionPools(env.client, infra, queue);
  }
}

describe('executionPoolWorkflow timers', () => {
  it('keeps a session\'s container for its next request until the cooldown, then retires it', async () => {
    await withTimedPool({ cooldownMs: 3000 }, async ({ lease, release, stateWhen }) => {
      const first = await lease({ leaseId: 'a', sessionKey: 'owner/s' });
      await release('a');
      expect(await lease({ leaseId: 'b', sessionKey: 'owner/s' })).toEqual({ leaseId: 'b', containerId: first.containerId, cold: false });
      await release('b');
      expect((await stateWhen((s) => s.containers.length === 0)).containers).toEqual([]);
      expect(await removedByDocker(infra.docker, [first.containerId])).toEqual([true]);
    });
  });

  it('retires ready containers beyond readySessions once they have cooled down, and keeps readySessions warm', async () => {
    await withTimedPool({ readySessions: 1, maxContainers: 3, cooldownMs: 3000 }, async ({ lease, release, stateWhen }) => {
      const a = await lease({ leaseId: 'a' });
      const b = await lease({ leaseId: 'b' });
      await release('a');
      await release('b');
      // Both given back, and the warm one the pool made while they were out: three ready, one more than it keeps.
      const warm = await stateWhen((s) => s.containers.length === 3 && s.containers.every((c) => c.state === 'ready'));
      expect(warm.containers.map((c) => c.containerId)).toEqual(expect.arrayContaining([a.containerId, b.containerId]));

      const cooled = await stateWhen((s) => s.containers.length === 1);
      expect(cooled.containers).toEqual([expect.objectContaining({ state: 'ready' })]);
      const retired = warm.containers.map((c) => c.containerId).filter((c) => c !== cooled.containers[0]!.containerId);
      expect(await removedByDocker(infra.docker, retired)).toEqual([true, true]);
    });
  });

  it('retires a leased container whose lease is never given back once the lease TTL has passed, and ignores the late release', async () => {
    await withTimedPool({ maxContainers: 1, leaseTtlMs: 1500 }, async ({ lease, release, stateWhen }) => {
      const lost = await lease({ leaseId: 'lost' });
      expect((await stateWhen((s) => s.containers.length === 0)).containers).toEqual([]);
      expect(await removedByDocker(infra.docker, [lost.containerId])).toEqual([true]);

      // The slot is free again, and the lease that outlived its TTL no longer counts.
      const next = await lease({ leaseId: 'next' });
      expect(next).toMatchObject({ cold: true });
      expect(next.containerId).not.toBe(lost.containerId);
      await release('lost');
      // Asked again after the signal, the same lease comes back: the pool has seen the release by then.
      expect(await lease({ leaseId: 'next' })).toEqual({ ...next, cold: false });
      const state = await stateWhen(() => true);
      expect(state.containers).toEqual([expect.objectContaining({ containerId: next.containerId, state: 'leased', leaseId: 'next' })]);
    });
  });

  it('sleeps while nothing is due: the warm container it keeps past its cooldown does not wake it every second', async () => {
    await withTimedPool({ readySessions: 1, maxContainers: 1, cooldownMs: 60_000 }, async ({ id, start, stateWhen, timersStarted }) => {
      const containerId = await infra.activities.createExecutionContainer({ name: `sf-exec-idle-${randomUUID()}`, image: infra.config.EXECUTION_IMAGE, runtime: 'python', pool: id });
      // Last used long ago: past its cooldown, yet the one warm container readySessions keeps.
      const warm: PoolContainer = { containerId, state: 'ready', lastUsedAt: 0 };
      await start([warm]);
      const before = await eventually(timersStarted, (timers) => timers > 0, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // Nothing falls due within a cooldown (a minute), so no wake-up in these seconds.
      expect((await timersStarted()) - before).toBe(0);
      expect((await stateWhen(() => true)).containers).toEqual([warm]);
    });
  });
});

describe('executionPoolWorkflow fair shares', () => {
  const refusalOf = (err: unknown) => (err instanceof WorkflowUpdateFailedError ? err.cause : err) as { type?: string; details?: unknown[] };

  it('serves a request at the cap by retiring the least recently used idle session of another user', async () => {
    await withTimedPool({ maxContainers: 2, cooldownMs: 60_000, maxSessionsPerOwner: 4 }, async ({ lease, release, stateWhen }) => {
      const older = await lease({ leaseId: 'a', ownerId: 'alice', sessionKey: 'alice/s' });
      await release('a');
      const newer = await lease({ leaseId: 'b', ownerId: 'bob', sessionKey: 'bob/s' });
      await release('b');
      await stateWhen((s) => s.containers.every((c) => c.state === 'idle-session'));

      // Two idle sessions hold the whole cap for a minute; a stateless request does not wait it out.
      const served = await lease({ leaseId: 'c', ownerId: 'carol', waitMs: 20_000 });
      expect(served.cold).toBe(true);
      const state = await stateWhen(() => true);
      expect(state.containers.map((c) => [c.containerId, c.state])).toEqual(expect.arrayContaining([[newer.containerId, 'idle-session'], [served.containerId, 'leased']]));
      expect(state.containers).toHaveLength(2);
      expect(await removedByDocker(infra.docker, [older.containerId])).toEqual([true]);

      // Alice's identifier starts fresh, as after a cooldown.
      await release('c');
      const again = await lease({ leaseId: 'd', ownerId: 'alice', sessionKey: 'alice/s', waitMs: 20_000 });
      expect(again.containerId).not.toBe(older.containerId);
    });
  });

  it('keeps one user to their share of leases, while another user is served', async () => {
    await withTimedPool({ maxContainers: 3, maxLeasesPerOwner: 1 }, async ({ lease }) => {
      await lease({ leaseId: 'a', ownerId: 'alice' });
      const refused = await lease({ leaseId: 'b', ownerId: 'alice', waitMs: 300 }).catch(refusalOf);
      expect(refused).toMatchObject({ type: 'ExecutionQuotaExceeded', details: [expect.objectContaining({ limit: 'in-flight', retryAfterSeconds: expect.any(Number) })] });
      await expect(lease({ leaseId: 'c', ownerId: 'bob', waitMs: 20_000 })).resolves.toMatchObject({ leaseId: 'c' });
    });
  });

  it('refuses a user a new session identifier beyond their share at once, and still serves the ones they have', async () => {
    await withTimedPool({ maxContainers: 3, maxSessionsPerOwner: 1, cooldownMs: 60_000 }, async ({ lease, release }) => {
      const kept = await lease({ leaseId: 'a', ownerId: 'alice', sessionKey: 'alice/one' });
      await release('a');
      const refused = await lease({ leaseId: 'b', ownerId: 'alice', sessionKey: 'alice/two', waitMs: 20_000 }).then(() => ({}), refusalOf);
      expect(refused).toMatchObject({ type: 'ExecutionQuotaExceeded', details: [expect.objectContaining({ limit: 'sessions' })] });
      // The retry hint is the time until the kept session cools down: about a minute, not the acquire wait.
      expect((refused as { details: [{ retryAfterSeconds: number }] }).details[0].retryAfterSeconds).toBeGreaterThan(30);
      await expect(lease({ leaseId: 'c', ownerId: 'alice', sessionKey: 'alice/one' })).resolves.toMatchObject({ containerId: kept.containerId });
      await expect(lease({ leaseId: 'd', ownerId: 'bob', sessionKey: 'bob/one' })).resolves.toMatchObject({ leaseId: 'd' });
    });
  });

  it('counts simultaneous new sessions of one user atomically', async () => {
    await withTimedPool({ maxContainers: 6, maxSessionsPerOwner: 2 }, async ({ lease }) => {
      const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => lease({ leaseId: `s${i}`, ownerId: 'alice', sessionKey: `alice/${i}`, waitMs: 20_000 }).then(() => 'served', (err: unknown) => refusalOf(err).type)));
      expect(outcomes.filter((o) => o === 'served')).toHaveLength(2);
      expect(outcomes.filter((o) => o === 'ExecutionQuotaExceeded')).toHaveLength(3);
    });
  });

  it('survives Docker failing to remove a container, and removes it once Docker recovers', async () => {
    let failuresLeft = 6; // more than the activity's four attempts
    const flaky = {
      ...infra.activities,
      async removeExecutionContainer(input: { containerId: string }) {
        if (failuresLeft-- > 0) throw new Error('injected: the Docker engine did not answer');
        return infra.activities.removeExecutionContainer(input);
      },
    };
    await withTimedPool({ maxContainers: 1 }, async ({ id, lease, stateWhen }) => {
      const first = await lease({ leaseId: 'a', ownerId: 'alice' });
      await env.client.workflow.getHandle(id).signal(releaseSignal, { leaseId: 'a', retire: true });
      await eventually(async () => failuresLeft, (left) => left <= 2, 20_000);
      expect((await env.client.workflow.getHandle(id).describe()).status.name).toBe('RUNNING');
      // Tried again later: the container goes, and the pool serves the next request.
      expect((await stateWhen((s) => s.containers.length === 0)).containers).toEqual([]);
      expect(await removedByDocker(infra.docker, [first.containerId])).toEqual([true]);
      await expect(lease({ leaseId: 'b', ownerId: 'alice', waitMs: 20_000 })).resolves.toMatchObject({ cold: true });
    }, flaky);
  });

  it('starts a new run that keeps a container an execution still runs in and removes an idle one', async () => {
    await withTimedPool({ maxContainers: 2 }, async ({ id, lease, stateWhen }) => {
      const busy = await lease({ leaseId: 'busy', ownerId: 'alice' });
      const idle = await lease({ leaseId: 'idle', ownerId: 'bob' });
      const job = executionJob(findRuntime('python', '*')!, 'import time; time.sleep(6); print("done")', { run: { command: ['python3', '-u', 'main.py'], timeoutMs: 10_000, memoryLimit: -1 } });
      const { userId } = await createUserKey(infra.pool, `pool-${randomUUID().slice(0, 8)}`, 'user', 'test');
      const running = infra.activities.runInContainer({ containerId: busy.containerId, job, ownerId: userId, historyOutputCap: 4096 });
      await new Promise((resolve) => setTimeout(resolve, 1500));

      // The pool is ended from outside, and the next request starts a new run that knows none of its containers.
      await env.client.workflow.getHandle(id).terminate('test: the pool is lost');
      const next = await lease({ leaseId: 'next', ownerId: 'carol', waitMs: 20_000 });
      expect(await removedByDocker(infra.docker, [idle.containerId])).toEqual([true]);
      const state = await stateWhen(() => true);
      expect(state.containers).toEqual(expect.arrayContaining([expect.objectContaining({ containerId: busy.containerId, state: 'in-use-orphan' })]));
      expect(next.containerId).not.toBe(busy.containerId);

      const { result } = await running;
      expect(result.run).toMatchObject({ stdout: 'done\n', code: 0 });
      // Its release reaches the new run, which retires the container rather than hand it to someone else.
      await env.client.workflow.getHandle(id).signal(releaseSignal, { leaseId: 'busy', retire: false, containerId: busy.containerId });
      expect(await removedByDocker(infra.docker, [busy.containerId])).toEqual([true]);
    });
  });
});
