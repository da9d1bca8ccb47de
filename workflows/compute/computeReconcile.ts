import { getExternalWorkflowHandle, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ComputeControlActivities } from '../../activities/compute/control';
import type { ComputeNodeActivities } from '../../activities/compute/node';
import { abuseTerminationSignal, checkAndTransitSignal } from '../../domain/compute/compute';
import { computeReconcileKind, makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import { upsertStatus } from '../shared/status';

// One query over the read model; a run that cannot read it fails, and the next run tries again.
const control = proxyActivities<ComputeControlActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });

/**
 * Determinism: runs recorded before the look for abuse existed did not measure anything; the
 * look (node activities, a control activity, signals) happens behind this patch.
 */
const abuseLookPatch = 'compute-reconcile-abuse-look';

/**
 * Measuring takes a second on a node (two samples); a node whose worker takes no task within
 * half a minute is skipped this time (its sessions are check-and-transit's business), and a
 * failed measurement is tried again next run rather than held up here.
 */
function onNode(taskQueue: string) {
  return proxyActivities<Pick<ComputeNodeActivities, 'measureKernels'>>({
    taskQueue, scheduleToStartTimeout: '30s', startToCloseTimeout: '1m', retry: { maximumAttempts: 2 },
  });
}

type SessionToCheck = Awaited<ReturnType<ComputeControlActivities['computeSessionsToCheck']>>[number];

export interface ComputeReconcileResult {
  nudged: number;
  /** The look for abuse (absent in runs from before it): kernels judged, abusing now, sessions warned and ended. */
  abuse?: { kernels: number; abusing: number; warned: number; terminated: number };
}

/**
 * Check and transit, on a schedule: every live session that may need it — RUNNING ones (their
 * containers may be gone), PENDING ones past max_wait, ones with a kernel on a dead node — is
 * told to look now. Each session decides for itself (its workflow owns its status); this run
 * only nudges. Then a look for abuse: the kernels of RUNNING sessions measured on their nodes
 * and judged against their owners' policies; a session with a kernel abusing at two
 * consecutive looks is warned (recorded) or told to end, as its owner's policy says.
 */
export async function computeReconcileWorkflow(): Promise<ComputeReconcileResult> {
  try {
    const sessions = await control.computeSessionsToCheck();
    const nudges = sessions.flatMap((session) => {
      const reason = reasonToCheck(session);
      return reason ? [{ id: session.sessionId, reason }] : [];
    });
    await Promise.all(nudges.map(({ id, reason }) => getExternalWorkflowHandle(makeComputeSessionWorkflowId(id)).signal(checkAndTransitSignal, { reason }).catch(() => undefined)));
    const abuse = patched(abuseLookPatch) ? await lookForAbuse(sessions) : undefined;
    upsertStatus(computeReconcileKind, 'CHECKED');
    return { nudged: nudges.length, ...(abuse && { abuse }) };
  } catch (err) {
    upsertStatus(computeReconcileKind, 'FAILED');
    throw err;
  }
}

/**
 * One activity per node measures all its kernels of RUNNING sessions at once, and one control
 * activity judges them all: this run's history grows with the number of nodes, not of
 * sessions, and the sessions' own (long-lived) histories get nothing unless one is to end.
 * Each run is a workflow of its own, so nothing accumulates from run to run; what must last
 * from one look to the next (the consecutive abusing looks) is kept in PostgreSQL.
 */
async function lookForAbuse(sessions: SessionToCheck[]): Promise<NonNullable<ComputeReconcileResult['abuse']>> {
  const kernels = sessions
    .filter((session) => session.status === 'RUNNING')
    .flatMap((session) => session.kernels)
    .filter((kernel) => kernel.containerId !== null && kernel.taskQueue !== null && kernel.nodeAlive);
  const queues = [...new Set(kernels.map((kernel) => kernel.taskQueue!))];
  const readings = (await Promise.all(queues.map(async (queue) => {
    const onThisNode = kernels.filter((kernel) => kernel.taskQueue === queue);
    try {
      const usage = await onNode(queue).measureKernels({ containerIds: onThisNode.map((kernel) => kernel.containerId!) });
      return onThisNode.flatMap((kernel) => {
        const measured = usage[kernel.containerId!];
        return measured ? [{ kernelId: kernel.kernelId, usage: measured }] : [];
      });
    } catch {
      return [];
    }
  }))).flat();
  if (readings.length === 0) return { kernels: 0, abusing: 0, warned: 0, terminated: 0 };
  const { workflowId, runId } = workflowInfo();
  const look = await control.recordComputeAbuseLook({ lookId: `${workflowId}/${runId}`, readings });
  await Promise.all(look.terminate.map(({ sessionId, finding }) =>
    getExternalWorkflowHandle(makeComputeSessionWorkflowId(sessionId)).signal(abuseTerminationSignal, finding).catch(() => undefined)));
  return { kernels: look.kernels, abusing: look.abusing, warned: look.warned.length, terminated: look.terminate.length };
}

function reasonToCheck(session: SessionToCheck): string | undefined {
  const dead = session.kernels.find((kernel) => kernel.node !== null && !kernel.nodeAlive);
  if (dead) return `node ${dead.node} has stopped heartbeating`;
  if (session.pendingExpired) return 'PENDING past max_wait';
  if (session.status === 'RUNNING') return 'scheduled check of its containers';
  return undefined;
}
