import {
  CancellationScope, condition, isCancellation, proxyActivities, setCurrentDetails, setHandler,
} from '@temporalio/workflow';
import type { PxeActivities } from '../../activities/pxe/pxe';
import { renderMachineScript } from '../../domain/pxe/ipxe';
import { pxeSessionStateQuery, stopPxeSessionUpdate, type PxeSessionInput, type PxeSessionPlan, type PxeSessionState, type PxeSessionStatus, type PxeStep } from '../../domain/pxe/pxe';
import { pxeSessionKind } from '../../domain/pxe/kind';
import { describeFailure } from '../../domain/shared/failures';
import { upsertStatus } from '../shared/status';

const userErrors = ['MachineNotFound', 'ImageNotReady', 'NotFound', 'BootServerCommandFailed', 'DhcpConfigInvalid'];

// Database writes are quick; PostgreSQL being briefly away is worth waiting out.
const db = proxyActivities<PxeActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', maximumInterval: '5s', maximumAttempts: 20, nonRetryableErrorTypes: userErrors },
});
// Boot-server commands take well under a second over a pooled SSH connection; a lost
// connection or a busy tgtd deserves a few retries, a refused command none (it fails by name).
const bootServer = proxyActivities<PxeActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '500ms', maximumInterval: '10s', maximumAttempts: 5, nonRetryableErrorTypes: userErrors },
});
// Copying the image is the one long step (reflink is instant, a plain copy is not).
const diskCopy = proxyActivities<PxeActivities>({
  startToCloseTimeout: '30m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 3, nonRetryableErrorTypes: userErrors },
});

interface SagaStep {
  step: PxeStep;
  undo: () => Promise<unknown>;
}

/**
 * A diskless-boot session for one machine, as a saga. Start: validate machine and image →
 * the session's own disk → the iSCSI target → the machine's iPXE script in the TFTP root →
 * its DHCP host entry → ACTIVE. Each step registers how to undo it before it runs (a step may
 * fail halfway), so a failure — or a cancellation — undoes everything in reverse and the
 * session ends FAILED with the cause. Stop walks the same steps backwards; it is idempotent.
 */
export async function pxeSessionWorkflow(input: PxeSessionInput): Promise<PxeSessionState> {
  const state: PxeSessionState = { sessionId: input.sessionId, status: 'STARTING', done: [] };
  let stopRequested = false;
  setHandler(pxeSessionStateQuery, () => state);
  setHandler(stopPxeSessionUpdate, async () => {
    stopRequested = true;
    await condition(() => state.status === 'STOPPED' || state.status === 'FAILED');
    return state;
  });

  const undoStack: SagaStep[] = [];
  const step = async (name: PxeStep, run: () => Promise<unknown>, undo: () => Promise<unknown>) => {
    undoStack.push({ step: name, undo });
    await run();
    state.done.push(name);
  };

  let plan: PxeSessionPlan | undefined;
  try {
    plan = await db.preparePxeSession({ sessionId: input.sessionId });
    const p = plan;
    setCurrentDetails(`Machine ${p.machineName} (${p.mac}, ${p.ip}) → ${p.target.targetIqn} LUN ${p.lun}`);
    await step('disk', () => diskCopy.ensureSessionDisk(p), () => bootServer.removeSessionDisk(p));
    await step('target', () => bootServer.ensureIscsiTarget(p), () => bootServer.removeIscsiTarget(p));
    const script = renderMachineScript({
      sessionId: p.sessionId, machineName: p.machineName, mac: p.mac, initiatorIqn: p.target.initiatorIqn, portalIp: p.portalIp, lun: p.lun, targetIqn: p.target.targetIqn,
    });
    await step('script', () => bootServer.writeTftpScript({ plan: p, script }), () => bootServer.deleteTftpScript(p));
    await step('dhcp', () => bootServer.addDhcpHost(p), () => bootServer.removeDhcpHost(p));
    await setStatus('ACTIVE', { bootScript: script });
  } catch (err) {
    const cancelled = isCancellation(err);
    const failedStep = undoStack.at(-1)?.step;
    // Undo even when the workflow itself is being cancelled: nothing may be left behind.
    await CancellationScope.nonCancellable(async () => {
      // An undo that keeps failing is reported with the cause; `done` then names what is left.
      const leftover = await undo(undoStack, state).then(() => undefined, (undoErr: unknown) => describeFailure(undoErr).message);
      const cause = cancelled ? { type: 'Cancelled', message: 'the start was cancelled' } : describeFailure(err);
      state.error = { ...cause, message: leftover ? `${cause.message}; undoing it failed too: ${leftover}` : cause.message, step: failedStep };
      await setStatus('FAILED', { error: state.error, bootScript: null });
    });
    return state;
  }

  try {
    await condition(() => stopRequested);
  } catch (err) {
    // Cancelling an active session stops it.
    if (!isCancellation(err)) throw err;
  }
  await CancellationScope.nonCancellable(async () => {
    await setStatus('STOPPING');
    try {
      await undo(undoStack, state);
      await setStatus('STOPPED', { bootScript: null });
    } catch (err) {
      state.error = describeFailure(err);
      await setStatus('FAILED', { error: state.error });
    }
  });
  return state;

  async function setStatus(status: PxeSessionStatus, extra: { error?: PxeSessionState['error']; bootScript?: string | null } = {}) {
    // The read model first: whoever sees the new status (a stop's caller) finds the row in step.
    await db.recordPxeSessionStatus({ sessionId: input.sessionId, status, ...extra });
    state.status = status;
    upsertStatus(pxeSessionKind, status);
  }
}

/** Runs the undo actions last-in first-out; each tolerates its resource being gone already. */
async function undo(stack: SagaStep[], state: PxeSessionState): Promise<void> {
  while (stack.length > 0) {
    const { step, undo: action } = stack[stack.length - 1]!;
    await action();
    stack.pop();
    state.done = state.done.filter((s) => s !== step);
  }
}
