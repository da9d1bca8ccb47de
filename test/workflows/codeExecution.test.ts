// codeExecutionWorkflow on the real dev server: the pool workflow with real containers on one
// worker, the execution on the execution queue's worker with its local activities. Those are
// the real ones, wrapped to record each call and, where a test says so, to inject a fault.
// No time skipping: offline there is no time-skipping test server (it is a downloaded binary);
// nothing here waits on a timer but the pool's acquire wait, taken from input (half a second).
import { ApplicationFailure, WithStartWorkflowOperation, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import type { createExecutionActivities } from '../../activities/execution/execution';
import { createExecutionStore } from '../../activities/execution/store';
import { createUserKey } from '../../api/platform/auth';
import {
  acquireUpdate, findRuntime, makeExecutionWorkflowId, makePoolWorkflowId, poolStateQuery,
  type AcquireRequest, type ExecutionJob, type Lease, type PoolSettings, type PoolState,
} from '../../domain/execution/execution';
import { domainFailure } from '../../domain/shared/errors';
import { SessionDetail, SessionStatus } from '../../domain/shared/searchAttributes';
import { executionTaskQueue } from '../../domain/shared/taskQueues';
import { poolSettingsFrom } from '../../platform/executionSettings';
import type { codeExecutionWorkflow } from '../../workflows/execution/codeExecution';
import type { executionPoolWorkflow } from '../../workflows/execution/executionPool';
import { eventually } from '../helpers/api';
import { executionJob, removedByDocker, removeExecutionPools } from '../helpers/executionPools';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv, createTestExecutionWorker, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let ownerId: string;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  ({ userId: ownerId } = await createUserKey(infra.pool, `wf-exec-${randomUUID().slice(0, 8)}`, 'user', 'test'));
});
afterAll(async () => {
  await infra.close();
  await env.teardown();
});

type ExecutionActivities = ReturnType<typeof createExecutionActivities>;
type Observed = Pick<ExecutionActivities, 'runInContainer' | 'releaseExecutionContainer' | 'acquireReplacementContainer'>;
type Call = ['run', string] | ['release', string, boolean] | ['acquire', string, string | undefined];

const python = findRuntime('python', '*')!;
function pythonJob(code: string, sessionKey?: string): ExecutionJob {
  return executionJob(python, code, { sessionKey, run: { command: python.run, timeoutMs: 5000, memoryLimit: -1 } });
}

interface Harness {
  calls: Call[];
  pool: WorkflowHandle<typeof executionPoolWorkflow>;
  lease(request: AcquireRequest): Promise<Lease>;
  execute(lease: Lease, job: ExecutionJob, historyOutputCap?: number): Promise<Awaited<ReturnType<typeof codeExecutionWorkflow>>>;
  /** The pool's state once `done` says so (signals reach the pool after the execution returns). */
  poolStateWhen(done: (state: PoolState) => boolean): Promise<PoolState>;
}

/**
 * A python pool and its executions on a task queue of their own; `faults` replace the real
 * activity (it records the call either way). The pool and its containers go afterwards.
 */
async function withPool(settings: Partial<PoolSettings>, faults: Partial<Observed>, test: (harness: Harness) => Promise<void>): Promise<void> {
  const taskQueue = uniqueTaskQueue('code-execution');
  const poolWorkflowId = makePoolWorkflowId(taskQueue, python.language);
  const calls: Call[] = [];
  const real = infra.activities;
  const observed: Observed = {
    runInContainer: (input) => {
      calls.push(['run', input.containerId]);
      return (faults.runInContainer ?? real.runInContainer)(input);
    },
    releaseExecutionContainer: (input) => {
      calls.push(['release', input.leaseId, input.retire]);
      return (faults.releaseExecutionContainer ?? real.releaseExecutionContainer)(input);
    },
    acquireReplacementContainer: (input) => {
      calls.push(['acquire', input.request.leaseId, input.request.sessionKey]);
      return (faults.acquireReplacementContainer ?? real.acquireReplacementContainer)(input);
    },
  };
  const poolSettings: PoolSettings = { ...poolSettingsFrom(infra.config, python.language), readySessions: 0, maxContainers: 1, acquireWaitMs: 500, ...settings };
  const harness: Harness = {
    calls,
    pool: env.client.workflow.getHandle(poolWorkflowId),
    lease: (request) => env.client.workflow.executeUpdateWithStart(acquireUpdate, {
      args: [request],
      startWorkflowOperation: new WithStartWorkflowOperation<typeof executionPoolWorkflow>('executionPoolWorkflow', {
        workflowId: poolWorkflowId, taskQueue, workflowIdConflictPolicy: 'USE_EXISTING', args: [{ settings: poolSettings, containers: [], leasesHandedOut: 0 }],
      }),
    }),
    execute: (lease, job, historyOutputCap = 4096) => env.client.workflow.execute<typeof codeExecutionWorkflow>('codeExecutionWorkflow', {
      workflowId: makeExecutionWorkflowId(job.requestId), taskQueue: executionTaskQueue(taskQueue),
      args: [{ job, ownerId, poolWorkflowId, lease, historyOutputCap }], workflowExecutionTimeout: job.run.timeoutMs + 60_000,
    }),
    poolStateWhen: (done) => eventually(() => env.client.workflow.getHandle(poolWorkflowId).query(poolStateQuery), done, 20_000),
  };
  const poolWorker = await createTestWorker(env, taskQueue, infra.activities);
  const executionWorker = await createTestExecutionWorker(env, taskQueue, { ...infra.activities, ...observed });
  try {
    await poolWorker.runUntil(() => executionWorker.runUntil(() => test(harness)));
  } finally {
    await removeExecutionPools(env.client, infra, taskQueue);
  }
}

/** The failure's type, found through the workflow and activity failures that carry it. */
function failureType(err: unknown): string | undefined {
  for (let cause: unknown = err; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ApplicationFailure) return cause.type ?? undefined;
  }
  return undefined;
}

describe('codeExecutionWorkflow', () => {
  it('runs the job in the leased container, records the full result, returns it cut for history and gives the container back', async () => {
    await withPool({}, {}, async ({ calls, lease, execute, poolStateWhen }) => {
      const job = pythonJob('print("y" * 100)');
      const leased = await lease({ leaseId: job.requestId });
      const outcome = await execute(leased, job, 20);
      expect(outcome).toMatchObject({ truncated: true, result: { language: 'python', run: { stdout: 'y'.repeat(20), code: 0, status: null } } });
      expect((await createExecutionStore(infra.pool).result(job.requestId, ownerId))?.run?.stdout).toBe(`${'y'.repeat(100)}\n`);
      expect(calls).toEqual([['run', leased.containerId], ['release', leased.leaseId, false]]);
      const state = await poolStateWhen((s) => s.containers[0]?.state === 'ready');
      expect(state.containers).toEqual([expect.objectContaining({ containerId: leased.containerId, state: 'ready' })]);
      expect(state.containers[0]!.leaseId).toBeUndefined();
    });
  });

  it('passes a container found dead before the job reached it over: retires it and runs the job, session and all, in a replacement', async () => {
    await withPool({}, {}, async ({ calls, lease, execute, poolStateWhen }) => {
      const sessionKey = `${ownerId}/s-${randomUUID()}`;
      const job = pythonJob('print("served")', sessionKey);
      const dead = await lease({ leaseId: job.requestId, sessionKey });
      await infra.docker.getContainer(dead.containerId).remove({ force: true });

      const outcome = await execute(dead, job);
      expect(outcome.result.run).toMatchObject({ stdout: 'served\n', code: 0 });
      const replacement = calls[3]?.[1];
      expect(replacement).not.toBe(dead.containerId);
      expect(calls).toEqual([
        ['run', dead.containerId], ['release', dead.leaseId, true],
        ['acquire', `${dead.leaseId}/1`, sessionKey], ['run', replacement], ['release', `${dead.leaseId}/1`, false],
      ]);
      const state = await poolStateWhen((s) => s.containers.length === 1 && s.containers[0]!.state === 'idle-session');
      expect(state.containers).toEqual([expect.objectContaining({ containerId: replacement, state: 'idle-session', sessionKey })]);
    });
  });

  it('gives up with ContainerLost after passing over eight dead containers, retiring every one', async () => {
    const lostBeforeRun = async ({ containerId }: { containerId: string }): Promise<never> => {
      throw domainFailure('ContainerLost', `execution container ${containerId.slice(0, 12)} is gone (injected)`, { containerId, duringRun: false });
    };
    // Each replacement waits for the dead one's retirement: on a loaded machine that outlasts 500 ms (PoolExhausted, not what this test is about).
    await withPool({ acquireWaitMs: 10_000 }, { runInContainer: lostBeforeRun }, async ({ calls, lease, execute, poolStateWhen }) => {
      const job = pythonJob('print("never")');
      const first = await lease({ leaseId: job.requestId });
      const failure = await execute(first, job).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect(failureType(failure)).toBe('ContainerLost');

      // The first lease and eight replacements (as many as a default pool holds), each released to be retired.
      const leaseIds = [first.leaseId, ...Array.from({ length: 8 }, (_, i) => `${first.leaseId}/${i + 1}`)];
      const ran = calls.filter((c) => c[0] === 'run').map((c) => c[1]);
      expect(calls).toEqual(leaseIds.flatMap((leaseId, i) => [
        ['run', ran[i]], ['release', leaseId, true], ...(i + 1 < leaseIds.length ? [['acquire', leaseIds[i + 1], undefined]] : []),
      ]));
      expect(new Set(ran).size).toBe(9);
      await poolStateWhen((s) => s.containers.length === 0);
      expect(await removedByDocker(infra.docker, ran)).toEqual(ran.map(() => true));
    });
  });

  const failedInDocker: [string, ExecutionActivities['runInContainer']][] = [
    ['ContainerLost', async ({ containerId }) => {
      throw domainFailure('ContainerLost', 'the container went away mid-run (injected)', { containerId, duringRun: true });
    }],
    ['ExecutionFailed', async () => {
      throw domainFailure('ExecutionFailed', 'the runner could not carry out the job (injected)');
    }],
  ];
  it.each(failedInDocker)('fails with %s when the run fails inside Docker, retiring the container and asking for no replacement', async (type, runInContainer) => {
    await withPool({}, { runInContainer }, async ({ calls, lease, execute, poolStateWhen }) => {
      const job = pythonJob('print("never")');
      const leased = await lease({ leaseId: job.requestId });
      const failure = await execute(leased, job).catch((err: unknown) => err);
      expect(failureType(failure)).toBe(type);
      expect(calls).toEqual([['run', leased.containerId], ['release', leased.leaseId, true]]);
      await poolStateWhen((s) => s.containers.length === 0);
      expect(await removedByDocker(infra.docker, [leased.containerId])).toEqual([true]);
    });
  });

  it('repeats a run whose answer was lost on the way, and the runner answers the repeat without running the program again', async () => {
    let attempts = 0;
    const answerLostOnce: ExecutionActivities['runInContainer'] = async (input) => {
      const outcome = await infra.activities.runInContainer(input);
      if (++attempts === 1) throw new Error('socket hang up (injected after the run)');
      return outcome;
    };
    await withPool({}, { runInContainer: answerLostOnce }, async ({ calls, lease, execute }) => {
      const sessionKey = `${ownerId}/s-${randomUUID()}`;
      // The session's work directory survives between runs: a second run would count two marks.
      const job = pythonJob('open("runs", "a").write("x")\nprint(len(open("runs").read()))', sessionKey);
      const leased = await lease({ leaseId: job.requestId, sessionKey });
      const outcome = await execute(leased, job);
      expect(outcome.result.run?.stdout).toBe('1\n');
      expect(calls).toEqual([['run', leased.containerId], ['run', leased.containerId], ['release', leased.leaseId, false]]);
    });
  });

  it('retries a release that fails at first until the pool has its container back', async () => {
    let releases = 0;
    const failsOnce: ExecutionActivities['releaseExecutionContainer'] = async (input) => {
      if (++releases === 1) throw new Error('connection refused (injected)');
      return infra.activities.releaseExecutionContainer(input);
    };
    await withPool({}, { releaseExecutionContainer: failsOnce }, async ({ calls, lease, execute, poolStateWhen }) => {
      const job = pythonJob('print("ok")');
      const leased = await lease({ leaseId: job.requestId });
      expect((await execute(leased, job)).result.run?.stdout).toBe('ok\n');
      expect(calls).toEqual([['run', leased.containerId], ['release', leased.leaseId, false], ['release', leased.leaseId, false]]);
      const state = await poolStateWhen((s) => s.containers[0]?.state === 'ready');
      expect(state.containers).toEqual([expect.objectContaining({ containerId: leased.containerId, state: 'ready' })]);
    });
  });

  it('fails with the pool\'s PoolExhausted, asking once, when a dead container\'s replacement cannot be had within the wait', async () => {
    await withPool({ maxContainers: 1, acquireWaitMs: 500 }, {}, async ({ calls, pool, lease, execute }) => {
      const job = pythonJob('print("never")');
      const dead = await lease({ leaseId: job.requestId });
      await infra.docker.getContainer(dead.containerId).remove({ force: true });
      // Another request waits at the cap: the slot the dead container frees goes to it.
      const waiting = await pool.startUpdate(acquireUpdate, { args: [{ leaseId: randomUUID(), waitMs: 60_000 }], waitForStage: 'ACCEPTED' });

      const failure = await execute(dead, job).catch((err: unknown) => err);
      expect(failureType(failure)).toBe('PoolExhausted');
      expect(calls).toEqual([['run', dead.containerId], ['release', dead.leaseId, true], ['acquire', `${dead.leaseId}/1`, undefined]]);
      expect((await waiting.result()).containerId).not.toBe(dead.containerId);
      const attributes = (await env.client.workflow.getHandle(makeExecutionWorkflowId(job.requestId)).describe()).typedSearchAttributes;
      expect([attributes.get(SessionStatus), attributes.get(SessionDetail)]).toEqual(['FAILED', 'XX']);
    });
  });
});
