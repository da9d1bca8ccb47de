import { getExternalWorkflowHandle, proxyActivities } from '@temporalio/workflow';
import type { ComputeControlActivities } from '../../activities/compute/control';
import { checkAndTransitSignal } from '../../domain/compute/compute';
import { computeReconcileKind, makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import { upsertStatus } from '../shared/status';

// One query over the read model; a run that cannot read it fails, and the next run tries again.
const control = proxyActivities<ComputeControlActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });

type SessionToCheck = Awaited<ReturnType<ComputeControlActivities['computeSessionsToCheck']>>[number];

/**
 * Check and transit, on a schedule: every live session that may need it — RUNNING ones (their
 * containers may be gone), PENDING ones past max_wait, ones with a kernel on a dead node — is
 * told to look now. Each session decides for itself (its workflow owns its status); this run
 * only nudges.
 */
export async function computeReconcileWorkflow(): Promise<{ nudged: number }> {
  try {
    const nudges = (await control.computeSessionsToCheck()).flatMap((session) => {
      const reason = reasonToCheck(session);
      return reason ? [{ id: session.sessionId, reason }] : [];
    });
    await Promise.all(nudges.map(({ id, reason }) => getExternalWorkflowHandle(makeComputeSessionWorkflowId(id)).signal(checkAndTransitSignal, { reason }).catch(() => undefined)));
    upsertStatus(computeReconcileKind, 'CHECKED');
    return { nudged: nudges.length };
  } catch (err) {
    upsertStatus(computeReconcileKind, 'FAILED');
    throw err;
  }
}

function reasonToCheck(session: SessionToCheck): string | undefined {
  const dead = session.kernels.find((kernel) => kernel.node !== null && !kernel.nodeAlive);
  if (dead) return `node ${dead.node} has stopped heartbeating`;
  if (session.pendingExpired) return 'PENDING past max_wait';
  if (session.status === 'RUNNING') return 'scheduled check of its containers';
  return undefined;
}
