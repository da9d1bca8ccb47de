import { getExternalWorkflowHandle, proxyActivities } from '@temporalio/workflow';
import type { ComputeControlActivities } from '../../activities/compute/control';
import { checkAndTransitSignal } from '../../domain/compute/compute';
import { computeReconcileKind, makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import { upsertStatus } from '../shared/status';

// One query over the read model; a run that cannot read it fails, and the next run tries again.
const control = proxyActivities<ComputeControlActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });

export interface ComputeReconcileInput {
  /** A node whose heartbeat is older than this is dead. */
  deadAfterSeconds: number;
}

/**
 * Check and transit, on a schedule: every live session that may need it — RUNNING ones (their
 * containers may be gone), PENDING ones past max_wait, ones on a dead node — is told to look
 * now. Each session decides for itself (its workflow owns its status); this run only nudges.
 */
export async function computeReconcileWorkflow(input: ComputeReconcileInput): Promise<{ nudged: number }> {
  try {
    const sessions = await control.computeSessionsToCheck({ deadAfterSeconds: input.deadAfterSeconds });
    await Promise.all(sessions.map(({ id, reason }) => getExternalWorkflowHandle(makeComputeSessionWorkflowId(id)).signal(checkAndTransitSignal, { reason }).catch(() => undefined)));
    upsertStatus(computeReconcileKind, 'CHECKED');
    return { nudged: sessions.length };
  } catch (err) {
    upsertStatus(computeReconcileKind, 'FAILED');
    throw err;
  }
}
