import { getExternalWorkflowHandle, log, proxyActivities } from '@temporalio/workflow';
import { sandboxSweepKind } from '../../domain/sandbox/kind';
import { upsertFinalStatus } from '../shared/status';
import type { SandboxActivities } from '../../activities/sandbox/sandbox';
import { cleanupExpiredSignal, makeSandboxWorkflowId, sandboxContainerName, type SandboxSweepInput, type SandboxSweepReport } from '../../domain/sandbox/sandbox';

// One query and one Docker listing per run; a sweep that cannot finish in a minute is retried
// by the next scheduled run anyway.
const sweep = proxyActivities<SandboxActivities>({ startToCloseTimeout: '60s', retry: { initialInterval: '1s', maximumAttempts: 3 } });

/**
 * The scheduled cleanup: takes a snapshot of every sandbox expired by now and signals each
 * chat's workflow to stop it — the chat's workflow decides (it skips a sandbox replaced since
 * the snapshot, and logs a stop that fails without stopping the sweep). Then it removes this
 * instance's sandbox containers that no live session claims.
 */
export async function sandboxSweepWorkflow(input: SandboxSweepInput = {}): Promise<SandboxSweepReport> {
  try {
    return await sweepOnce(input);
  } catch (err) {
    // A run that could not finish says so in the Web UI; the next scheduled run tries again.
    upsertFinalStatus(sandboxSweepKind, 'FAILED');
    throw err;
  }
}

async function sweepOnce(input: SandboxSweepInput): Promise<SandboxSweepReport> {
  const expired = await sweep.listExpiredSandboxes({ ownerId: input.ownerId });
  const outcomes = await Promise.all(
    expired.map(async ({ chatId, sessionId }) => {
      try {
        await getExternalWorkflowHandle(makeSandboxWorkflowId(chatId)).signal(cleanupExpiredSignal, { sessionId });
        return true;
      } catch (err) {
        // The chat's workflow is gone (terminated by hand): nobody else will stop this one.
        log.warn('sandbox workflow unreachable; stopping its container directly', { chatId, sessionId, error: String(err) });
        await sweep.stopSandboxContainer({ sessionId, containerName: sandboxContainerName(sessionId), reason: 'expired' });
        return false;
      }
    }),
  );
  const orphansRemoved = await sweep.removeOrphanSandboxContainers();
  upsertFinalStatus(sandboxSweepKind, 'SWEPT');
  return { signalled: outcomes.filter(Boolean).length, orphansRemoved };
}
