import {
  allHandlersFinished, condition, continueAsNew, proxyActivities, proxyLocalActivities, setCurrentDetails, setHandler,
} from '@temporalio/workflow';
import type { TerminalActivities } from '../../activities/terminal/terminal';
import { domainFailure } from '../../domain/shared/errors';
import { terminalKind } from '../../domain/terminal/kind';
import { upsertStatus } from '../shared/status';
import {
  closeUpdate, heartbeatUpdate, openedUpdate, rotateTokenUpdate,
  type CloseReason, type TerminalSessionInput, type TerminalSessionState,
} from '../../domain/terminal/terminal';
import { shouldContinueAsNew } from '../shared/continueAsNew';

// Opening and ending write one row each; PostgreSQL answers in milliseconds, so a minute with
// retries rides out a restart, and the session must not end before its row says so.
const readModel = proxyActivities<TerminalActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '500ms', maximumInterval: '10s', maximumAttempts: 10 },
});
// Heartbeats and token rotations are on the user's request path: a local activity keeps them
// to one marker event in history, and a few quick tries are enough before the api answers 5xx.
const quickWrites = proxyLocalActivities<TerminalActivities>({
  startToCloseTimeout: '5s',
  retry: { initialInterval: '200ms', maximumAttempts: 3 },
});

/**
 * One terminal session: open the row, then sleep until the earlier of the absolute TTL and
 * the idle deadline. Heartbeats only move `lastSeenAtMs`; the timer is re-armed lazily when
 * it fires (if the idle deadline moved, sleep again), so a heartbeat adds no timer to history.
 * A close or beacon wakes the loop at once. Long sessions continue as new with their state.
 */
export async function terminalSessionWorkflow(input: TerminalSessionInput): Promise<TerminalSessionState> {
  const now = Date.now(); // workflow time: deterministic on replay
  const createdAtMs = input.carried?.createdAtMs ?? now;
  const state: TerminalSessionState = {
    sessionId: input.sessionId,
    status: 'active',
    createdAtMs,
    lastSeenAtMs: input.carried?.lastSeenAtMs ?? now,
    expiresAtMs: createdAtMs + input.ttlSeconds * 1000,
  };
  let requestedClose: CloseReason | undefined;
  let opened = input.carried !== undefined;
  let ended = false;
  const rejectWhenEnded = () => {
    if (state.status !== 'active' || requestedClose) throw domainFailure('InvalidSessionState', `the session is ${state.status}`, { state: state.status });
  };

  setHandler(openedUpdate, async () => {
    await condition(() => opened);
    return state;
  });
  setHandler(heartbeatUpdate, async () => {
    state.lastSeenAtMs = Date.now();
    await quickWrites.recordTerminalHeartbeat({ sessionId: state.sessionId, lastSeenAt: new Date(state.lastSeenAtMs).toISOString() });
    return state;
  }, { validator: () => rejectWhenEnded() });
  setHandler(rotateTokenUpdate, async ({ tokenHash }) => {
    await quickWrites.recordTerminalToken({ sessionId: state.sessionId, tokenHash });
    return state;
  }, { validator: (_input: { tokenHash: string }) => rejectWhenEnded() });
  setHandler(closeUpdate, async ({ reason }) => {
    requestedClose ??= reason;
    await condition(() => ended);
    return state;
  });

  if (!opened) {
    await readModel.recordTerminalSessionOpened({
      sessionId: input.sessionId, ownerId: input.ownerId, hostId: input.hostId, hostName: input.hostName, mode: input.mode, tokenHash: input.tokenHash,
      createdAt: new Date(state.createdAtMs).toISOString(), expiresAt: new Date(state.expiresAtMs).toISOString(), idleTimeoutSeconds: input.idleTimeoutSeconds,
    });
    opened = true;
  }
  setCurrentDetails(`Terminal on **${input.hostName}** (${input.mode}); TTL ${input.ttlSeconds} s, idle timeout ${input.idleTimeoutSeconds} s`);

  const idleDeadline = () => state.lastSeenAtMs + input.idleTimeoutSeconds * 1000;
  let outcome: { status: 'closed' | 'expired'; reason: CloseReason } | undefined;
  while (!outcome) {
    const deadline = Math.min(state.expiresAtMs, idleDeadline());
    const sleepMs = deadline - Date.now();
    if (sleepMs > 0) {
      // Timer derived from input and workflow time: the same on replay.
      await condition(() => requestedClose !== undefined || shouldContinueAsNew(input.historyEventLimit), sleepMs);
    }
    if (requestedClose) outcome = { status: 'closed', reason: requestedClose };
    else if (Date.now() >= state.expiresAtMs) outcome = { status: 'expired', reason: 'ttl' };
    else if (Date.now() >= idleDeadline()) outcome = { status: 'expired', reason: 'idle' };
    else if (shouldContinueAsNew(input.historyEventLimit)) {
      // Determinism: wait for in-flight heartbeats so their writes land before the new run.
      await condition(() => allHandlersFinished() || requestedClose !== undefined);
      if (!requestedClose) {
        await continueAsNew<typeof terminalSessionWorkflow>({ ...input, carried: { createdAtMs: state.createdAtMs, lastSeenAtMs: state.lastSeenAtMs } });
      }
    }
  }

  const closedAtMs = Date.now();
  await readModel.recordTerminalSessionEnded({ sessionId: input.sessionId, status: outcome.status, reason: outcome.reason, endedAt: new Date(closedAtMs).toISOString() });
  Object.assign(state, { status: outcome.status, reasonClosed: outcome.reason, closedAtMs });
  ended = true;
  upsertStatus(terminalKind, outcome.status);
  setCurrentDetails(`Terminal on **${input.hostName}** ${outcome.status}: ${outcome.reason}`);
  await condition(allHandlersFinished);
  return state;
}
