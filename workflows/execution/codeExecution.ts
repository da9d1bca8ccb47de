import { getExternalWorkflowHandle, patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ExecutionActivities } from '../../activities/execution/execution';
import { executionStatus, releaseSignal, type CodeExecutionInput, type ExecutionResult, type UnwritableFile } from '../../domain/execution/execution';
import { executionKind } from '../../domain/execution/kind';
import { namedFailure } from '../../domain/shared/failures';
import { upsertFinalStatus, upsertStatus } from '../shared/status';

/**
 * `retire`: the container could not be emptied after the job, so nobody else may have it.
 * `unwritableFile`: the runner turned the job down and ran nothing (the api answers 400).
 */
type ExecutionOutcome = { result: ExecutionResult; truncated: boolean; retire?: boolean; unwritableFile?: UnwritableFile };

/** Executions started before the runner link keep the steps their histories recorded. */
const runnerLinkPatch = 'execution-runner-link';

/**
 * One execution: run the job in the container the pool leased, then give the container back.
 * The result in history has its output cut short (the full result is in PostgreSQL).
 *
 * Both steps are local activities, so the whole execution is one workflow task: no activity
 * or signal round trip through the server. A worker lost mid-run makes Temporal retry that
 * task elsewhere; the retry sends the same job again, and the container's runner answers it
 * from its record of finished jobs instead of running user code twice.
 */
export async function codeExecutionWorkflow(input: CodeExecutionInput): Promise<ExecutionOutcome> {
  if (!patched(runnerLinkPatch)) return executeWithActivityAndSignal(input);
  const { job } = input;
  const run = proxyLocalActivities<ExecutionActivities>({
    // The runner's own SIGKILL deadlines end user code; 70 s more covers Docker and the runner's
    // clean-up after a fork bomb under gVisor (its guard is 60 s).
    startToCloseTimeout: (job.compile?.timeoutMs ?? 0) + job.run.timeoutMs + 70_000,
    // A second attempt only repeats the request: the runner answers a known job id from memory.
    retry: { maximumAttempts: 2, initialInterval: '100ms' },
  });
  // Releases and replacement leases are messages to the pool: retried until they land.
  const pool = proxyLocalActivities<ExecutionActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 10, initialInterval: '100ms' } });

  let lease = input.lease;
  for (let replacements = 0; ; replacements++) {
    try {
      const outcome = await run.runInContainer({ containerId: lease.containerId, job, ownerId: input.ownerId, sessionId: job.sessionKey, historyOutputCap: input.historyOutputCap });
      await pool.releaseExecutionContainer({ poolWorkflowId: input.poolWorkflowId, leaseId: lease.leaseId, retire: outcome.retire === true, containerId: lease.containerId });
      upsertStatus(executionKind, executionStatus(outcome.result));
      return outcome;
    } catch (err) {
      // A container the run failed in (vanished, runner silent) is not trusted again.
      await pool.releaseExecutionContainer({ poolWorkflowId: input.poolWorkflowId, leaseId: lease.leaseId, retire: true, containerId: lease.containerId });
      // One found dead before the job reached it (say, after a Docker restart) costs the
      // client nothing: the job goes to another container.
      if (!lostBeforeRun(err) || replacements >= maxReplacements) {
        upsertStatus(executionKind, 'XX');
        throw err;
      }
      try {
        lease = await pool.acquireReplacementContainer({ poolWorkflowId: input.poolWorkflowId, request: { leaseId: `${input.lease.leaseId}/${replacements + 1}`, ownerId: input.ownerId, sessionKey: job.sessionKey } });
      } catch (refused) {
        // No container to run it in (the pool at its cap): the execution could not be carried out.
        upsertFinalStatus(executionKind, 'XX');
        throw refused;
      }
    }
  }
}

/** Dead containers one execution may pass over (as many as a default pool holds) before it gives up with ContainerLost. */
const maxReplacements = 8;

function lostBeforeRun(err: unknown): boolean {
  const failure = namedFailure(err);
  return failure?.type === 'ContainerLost' && (failure.details?.[0] as { duringRun?: boolean } | undefined)?.duringRun === false;
}

/**
 * The steps before the runner link (an activity, then an awaited release signal), for
 * executions that were running when it was deployed. Executions last at most the longest run
 * plus a minute: remove with the patch one release later.
 */
async function executeWithActivityAndSignal(input: CodeExecutionInput): Promise<ExecutionOutcome> {
  const { job, lease } = input;
  const runner = proxyActivities<ExecutionActivities>({
    startToCloseTimeout: (job.compile?.timeoutMs ?? 0) + job.run.timeoutMs + 30_000,
    heartbeatTimeout: '5s',
    retry: { maximumAttempts: 1 },
  });
  const pool = getExternalWorkflowHandle(input.poolWorkflowId);
  let outcome: ExecutionOutcome;
  try {
    outcome = await runner.runInContainer({ containerId: lease.containerId, job, ownerId: input.ownerId, sessionId: job.sessionKey, historyOutputCap: input.historyOutputCap });
  } catch (err) {
    await pool.signal(releaseSignal, { leaseId: lease.leaseId, retire: true });
    upsertStatus(executionKind, 'XX');
    throw err;
  }
  upsertStatus(executionKind, executionStatus(outcome.result));
  await pool.signal(releaseSignal, { leaseId: lease.leaseId, retire: false });
  return outcome;
}
