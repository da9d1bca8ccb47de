import { getExternalWorkflowHandle, patched, proxyActivities, proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { createExecutionActivities } from '../activities/execution';
import { executionStatus, releaseSignal, type CodeExecutionInput, type ExecutionResult } from '../domain/execution';
import { SessionStatus } from '../domain/searchAttributes';

type ExecutionActivities = ReturnType<typeof createExecutionActivities>;
type ExecutionOutcome = { result: ExecutionResult; truncated: boolean };

/** Executions started before the runner link keep the steps their histories recorded. */
export const runnerLinkPatch = 'execution-runner-link';

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
  const { job, lease } = input;
  const run = proxyLocalActivities<ExecutionActivities>({
    // The runner's own SIGKILL deadlines end user code; 30 s more covers Docker.
    startToCloseTimeout: (job.compile?.timeoutMs ?? 0) + job.run.timeoutMs + 30_000,
    // A second attempt only repeats the request: the runner answers a known job id from memory.
    retry: { maximumAttempts: 2, initialInterval: '100ms' },
  });
  // A release is a signal to the pool, idempotent per lease: retried until it lands.
  const release = proxyLocalActivities<ExecutionActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 10, initialInterval: '100ms' } });
  const handBack = (retire: boolean) => release.releaseExecutionContainer({ poolWorkflowId: input.poolWorkflowId, leaseId: lease.leaseId, retire });

  let outcome: ExecutionOutcome;
  try {
    outcome = await run.runInContainer({ containerId: lease.containerId, job, ownerId: input.ownerId, sessionId: job.sessionKey, historyOutputCap: input.historyOutputCap });
  } catch (err) {
    // A container the run failed in (vanished, runner silent) is not trusted again.
    await handBack(true);
    upsertSearchAttributes([{ key: SessionStatus, value: 'XX' }]);
    throw err;
  }
  await handBack(false);
  upsertSearchAttributes([{ key: SessionStatus, value: executionStatus(outcome.result) }]);
  return outcome;
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
    upsertSearchAttributes([{ key: SessionStatus, value: 'XX' }]);
    throw err;
  }
  upsertSearchAttributes([{ key: SessionStatus, value: executionStatus(outcome.result) }]);
  await pool.signal(releaseSignal, { leaseId: lease.leaseId, retire: false });
  return outcome;
}
