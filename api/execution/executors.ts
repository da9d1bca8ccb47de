import { WithStartWorkflowOperation, WorkflowFailedError, type Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { createExecutionStore } from '../../activities/execution/store';
import { runLocally } from '../../activities/execution/localExecutor';
import { acquireUpdate, releaseSignal, type AcquireRequest, type ExecutionJob, type ExecutionResult, type Lease, type PoolSettings, type UnwritableFile } from '../../domain/execution/execution';
import { Runtime } from '../../domain/shared/searchAttributes';
import { causeChain, describeFailure } from '../../domain/shared/failures';
import { executionTaskQueue } from '../../domain/shared/taskQueues';
import { InFlightGate } from './inFlightGate';
import { ApiError, toProblem } from '../platform/problems';
import type { codeExecutionWorkflow } from '../../workflows/execution/codeExecution';
import type { executionPoolWorkflow } from '../../workflows/execution/executionPool';
import { executionKind, executionPoolKind } from '../../domain/execution/kind';
import { sessionStartOptions } from '../../domain/shared/kind';

type ExecutorName = 'docker' | 'local';

export interface ExecutionOutcome {
  result: ExecutionResult;
  /** The container was created for this request (docker only). */
  cold: boolean;
}

/** The two ways to serve the same contract: the pool of containers, or a local subprocess. */
export interface Executor {
  name: ExecutorName;
  execute(job: ExecutionJob, ownerId: string): Promise<ExecutionOutcome>;
}

interface TemporalExecutorDeps {
  temporal: Client;
  pool: Pool;
  taskQueue: string;
  poolSettings: (runtime: string) => PoolSettings;
  historyOutputCap: number;
  /** Only when the client shares a NativeConnection with a worker polling the execution queue. */
  eagerStart: boolean;
}

/**
 * The docker path: lease a container from the runtime's pool workflow (update-with-start, so
 * the first request creates the pool), then run a short `exec/<requestId>` workflow and await it.
 */
export function createTemporalExecutor(deps: TemporalExecutorDeps): Executor {
  const gates = new Map<string, InFlightGate>();
  const store = createExecutionStore(deps.pool);
  return {
    name: 'docker',
    async execute(job, ownerId) {
      const settings = deps.poolSettings(job.language);
      // The id acquireLease's update-with-start builds from the same key.
      const poolWorkflowId = executionPoolKind.workflowId(deps.taskQueue, settings.runtime);
      let gate = gates.get(poolWorkflowId);
      if (!gate) gates.set(poolWorkflowId, (gate = new InFlightGate(maxAcquiresInFlight)));
      const deadline = Date.now() + settings.acquireWaitMs;
      const lease = await gate.run(deadline, () => poolExhausted(settings), () => acquireLease(deps.temporal, deps.taskQueue, settings, { leaseId: job.requestId, ownerId, sessionKey: job.sessionKey }, deadline));
      const started = deps.temporal.workflow.start<typeof codeExecutionWorkflow>(executionKind.workflowType, {
        ...sessionStartOptions(executionKind, {
          key: [job.requestId], taskQueue: executionTaskQueue(deps.taskQueue), status: 'RUNNING', ownerId,
          attributes: [{ key: Runtime, value: job.language }],
          summary: `${job.language} ${job.version} execution${job.sessionKey ? ' in a session' : ''}`,
        }),
        args: [{ job, ownerId, poolWorkflowId, lease, historyOutputCap: deps.historyOutputCap }],
        requestEagerStart: deps.eagerStart,
        // Bounded by the runner's deadlines plus its clean-up and Docker's slack (the run's local
        // activity allows 70 s past them); never an endless wait.
        workflowExecutionTimeout: (job.compile?.timeoutMs ?? 0) + job.run.timeoutMs + 90_000,
      });
      const execution = await started.catch(async (err: unknown) => {
        // Nothing will run in the container: give it back now rather than after the lease's TTL.
        await deps.temporal.workflow.getHandle(poolWorkflowId).signal(releaseSignal, { leaseId: lease.leaseId, retire: false }).catch(() => undefined);
        throw err;
      });
      const outcome = await execution.result().catch((err: unknown) => {
        throw toExecutionFailure(err);
      });
      if (outcome.unwritableFile) throw unwritableFileError(outcome.unwritableFile);
      const result = outcome.truncated ? ((await store.result(job.requestId, ownerId)) ?? outcome.result) : outcome.result;
      return { result, cold: lease.cold };
    },
  };
}

/**
 * Temporal admits only a few in-flight updates per workflow (10 on a default server): one api
 * process keeps its acquires on a pool below that, and queues the rest itself.
 */
const maxAcquiresInFlight = 8;

/**
 * Leases a container: update-with-start on the pool. Past Temporal's in-flight limit (several
 * api processes on one pool) the server refuses at once, so a refused request tries again with
 * jitter until the acquire wait is spent, then gets 429 like a request the pool turned away. An
 * acquire that reaches the pool while it continues as new is refused too ("unexpected workflow
 * task failure"): it goes to the next run, a few times at most — a pool whose tasks keep failing
 * is a fault to report, not to wait out.
 */
async function acquireLease(temporal: Client, taskQueue: string, settings: PoolSettings, request: AcquireRequest, deadline: number): Promise<Lease> {
  let runEndings = 0;
  for (;;) {
    try {
      return await temporal.workflow.executeUpdateWithStart(acquireUpdate, {
        args: [{ ...request, waitMs: Math.max(0, deadline - Date.now()) }],
        // One operation per attempt: the SDK allows each to be used once.
        startWorkflowOperation: new WithStartWorkflowOperation<typeof executionPoolWorkflow>(executionPoolKind.workflowType, {
          ...sessionStartOptions(executionPoolKind, {
            key: [taskQueue, settings.runtime], taskQueue, status: 'RUNNING',
            attributes: [{ key: Runtime, value: settings.runtime }],
            summary: `Warm ${settings.runtime} execution containers`,
          }),
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [{ settings, containers: [], leasesHandedOut: 0 }],
        }),
      });
    } catch (err) {
      const runEnded = metRunEnding(err) && ++runEndings <= maxRunEndingsPerAcquire;
      if (!runEnded && !tooManyUpdates(err)) throw err;
      if (Date.now() >= deadline) throw poolExhausted(settings);
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80));
    }
  }
}

const maxRunEndingsPerAcquire = 5;

function poolExhausted(settings: PoolSettings): ApiError {
  return new ApiError('PoolExhausted', `too many ${settings.runtime} requests are waiting for a container`, { runtime: settings.runtime, retryAfterSeconds: Math.max(1, Math.ceil(settings.acquireWaitMs / 1000)) });
}

/** gRPC status RESOURCE_EXHAUSTED, as the server answers an update past its in-flight limit. */
const grpcResourceExhausted = 8;

/** The server's answer to an update that arrived as the workflow's run ended (continue-as-new). */
function metRunEnding(err: unknown): boolean {
  return causeChain(err).some((cause) => {
    const { message } = cause as { message?: unknown };
    return typeof message === 'string' && /unexpected workflow task failure|MultiOperationExecutionAborted/i.test(message);
  });
}

function tooManyUpdates(err: unknown): boolean {
  return causeChain(err).some((cause) => {
    const { code, message } = cause as { code?: unknown; message?: unknown };
    return code === grpcResourceExhausted || (typeof message === 'string' && /in-flight updates|RESOURCE_EXHAUSTED|resource exhausted/i.test(message));
  });
}

/**
 * A named failure keeps its name; anything else (a lost worker's heartbeat timeout, a timed-out
 * workflow) becomes ExecutionFailed with Temporal's reason, never a bare 500.
 */
function toExecutionFailure(err: unknown): unknown {
  if (!(err instanceof WorkflowFailedError) || toProblem(err)) return err;
  const reason = err.cause ? describeFailure(err.cause).message : err.message;
  return new ApiError('ExecutionFailed', `the execution did not complete: ${reason}; its container was retired`);
}

/**
 * The runner turned the job down before running it: a file of the request cannot be written
 * where it would run (in a session, something an earlier program left is in the way).
 */
function unwritableFileError({ index, reason }: UnwritableFile): ApiError {
  const message = `cannot be written in the work directory: ${reason}`;
  return new ApiError('ValidationFailed', `file ${index} ${message}`, { errors: [{ field: `body.files.${index}.name`, message }] });
}

export function createLocalExecutor(pool: Pool): Executor {
  const store = createExecutionStore(pool);
  return {
    name: 'local',
    async execute(job, ownerId) {
      const { result, unwritableFile } = await runLocally(job, ownerId, store);
      if (unwritableFile) throw unwritableFileError(unwritableFile);
      return { result, cold: false };
    },
  };
}

/**
 * The local executor only when configured (USE_LOCAL_EXECUTOR=true; the response header names
 * it); otherwise Docker, once it has answered a ping — until then each request asks again and
 * gets 503 DependencyUnavailable with Retry-After.
 */
export function chooseExecutor(useLocal: boolean, docker: Docker, dockerExecutor: () => Executor, localExecutor: () => Executor): () => Promise<Executor> {
  if (useLocal) {
    const local = localExecutor();
    return () => Promise.resolve(local);
  }
  let chosen: Executor | undefined;
  // Never the host instead: user code runs isolated or not at all. Docker not answering is a
  // 503 the client may retry, and the next request asks Docker again.
  return async () => {
    if (chosen) return chosen;
    try {
      await docker.ping();
    } catch (err) {
      throw new ApiError('DependencyUnavailable', `the Docker engine does not answer (${(err as Error).message}); executions need it`, { dependency: 'docker', retryAfterSeconds: dockerRetryAfterSeconds });
    }
    return (chosen = dockerExecutor());
  };
}

/** How soon a client may ask again when Docker did not answer: an engine restart takes seconds. */
const dockerRetryAfterSeconds = 5;
