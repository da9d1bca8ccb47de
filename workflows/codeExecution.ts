import { getExternalWorkflowHandle, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { createExecutionActivities } from '../activities/execution';
import { executionStatus, releaseSignal, type CodeExecutionInput, type ExecutionResult } from '../domain/execution';
import { SessionStatus } from '../domain/searchAttributes';

type ExecutionActivities = ReturnType<typeof createExecutionActivities>;

/**
 * One execution: run the job in the container the pool leased, then give the container back.
 * The result in history has its output cut short (the full result is in PostgreSQL).
 */
export async function codeExecutionWorkflow(input: CodeExecutionInput): Promise<{ result: ExecutionResult; truncated: boolean }> {
  const { job, lease } = input;
  // The run itself is bounded by the runner's own SIGKILL deadlines; 30 s more covers Docker.
  // User code is not re-run: one attempt. A dead worker shows within the 5 s heartbeat timeout.
  const runner = proxyActivities<ExecutionActivities>({
    startToCloseTimeout: (job.compile?.timeoutMs ?? 0) + job.run.timeoutMs + 30_000,
    heartbeatTimeout: '5s',
    retry: { maximumAttempts: 1 },
  });
  const pool = getExternalWorkflowHandle(input.poolWorkflowId);
  let outcome: { result: ExecutionResult; truncated: boolean };
  try {
    outcome = await runner.runInContainer({ containerId: lease.containerId, job, ownerId: input.ownerId, sessionId: job.sessionKey, historyOutputCap: input.historyOutputCap });
  } catch (err) {
    // A container the run failed in (lost worker, vanished container) is not trusted again.
    await pool.signal(releaseSignal, { leaseId: lease.leaseId, retire: true });
    upsertSearchAttributes([{ key: SessionStatus, value: 'XX' }]);
    throw err;
  }
  upsertSearchAttributes([{ key: SessionStatus, value: executionStatus(outcome.result) }]);
  // Awaited: the server drops a signal whose sender completed in the same workflow task
  // (measured: initiated, never delivered), and the pool would keep the container leased.
  await pool.signal(releaseSignal, { leaseId: lease.leaseId, retire: false });
  return outcome;
}
