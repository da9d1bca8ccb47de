import { defineUpdate } from '@temporalio/workflow';

/**
 * Terminal sessions (seed 002): a browser terminal bridged to an SSH shell on a registered
 * host. The lifecycle — absolute TTL, idle timeout pushed back by heartbeats, close, close
 * beacon — lives in one `terminal/<id>` workflow; the bytes go through the api's WebSocket
 * bridge. Shared by the api and the workflow.
 */

// The seed's constants, verbatim: clients of the original system know these strings.
export const terminalStatuses = ['active', 'closed', 'expired'] as const;
export type TerminalStatus = (typeof terminalStatuses)[number];
export const closeReasons = ['user_close', 'ttl', 'idle', 'client_lost'] as const;
export type CloseReason = (typeof closeReasons)[number];
export const terminalModes = ['embedded', 'popout'] as const;
export type TerminalMode = (typeof terminalModes)[number];

/** A user ends a session with a close or a beacon; the workflow's timers end it with expiry. */
export type ClientCloseReason = Extract<CloseReason, 'user_close' | 'client_lost'>;

/** 32 random bytes as hex, as the seed's ids are. */
export const terminalSessionIdPattern = /^[0-9a-f]{64}$/;

/**
 * One workflow per session id: the id is random, so sessions never serialise on each other;
 * reuse per (user, host, mode) is decided by the api over the read model.
 */
export function makeTerminalWorkflowId(sessionId: string): string {
  return `terminal/${sessionId}`;
}

export interface TerminalSessionInput {
  sessionId: string;
  ownerId: string;
  hostId: string;
  hostName: string;
  mode: TerminalMode;
  /** SHA-256 hex of the connect token; the token itself never enters history. */
  tokenHash: string;
  ttlSeconds: number;
  idleTimeoutSeconds: number;
  /** Continue-as-new after this many history events even when the server has not suggested it. */
  historyEventLimit?: number;
  /** Carried across continue-as-new: workflow-time epoch milliseconds. */
  carried?: { createdAtMs: number; lastSeenAtMs: number };
}

/** What the workflow knows about its session, as epoch milliseconds of workflow time. */
export interface TerminalSessionState {
  sessionId: string;
  status: TerminalStatus;
  reasonClosed?: CloseReason;
  createdAtMs: number;
  lastSeenAtMs: number;
  expiresAtMs: number;
  closedAtMs?: number;
}

/** The session row is written; the api answers POST only after this. */
export const openedUpdate = defineUpdate<TerminalSessionState>('terminalOpened');
/** Pushes the idle deadline back; rejected (no history) once the session has ended. */
export const heartbeatUpdate = defineUpdate<TerminalSessionState>('terminalHeartbeat');
/** A reused session gets a fresh connect token; only its hash is passed. */
export const rotateTokenUpdate = defineUpdate<TerminalSessionState, [{ tokenHash: string }]>('terminalRotateToken');
/** Close or beacon: idempotent, the first reason wins. Returns once the read model says so. */
export const closeUpdate = defineUpdate<TerminalSessionState, [{ reason: ClientCloseReason }]>('terminalClose');

/** The channel the end-of-session activity notifies on; the api's bridges listen to it. */
export const terminalEndedChannel = 'terminal_session_ended';
export interface TerminalEndedNotice {
  session_id: string;
  status: TerminalStatus;
  reason: CloseReason;
}

/**
 * WebSocket close codes the bridge uses, in the private range 4000–4999; the reason text is
 * the seed's close reason so the page can show it.
 */
export const terminalCloseCodes: Record<CloseReason, number> = {
  user_close: 4000,
  client_lost: 4001,
  ttl: 4002,
  idle: 4003,
};
export const shellExitedCloseCode = 4010;
export const sshFailedCloseCode = 4011;
/** The host's SSH key was refused (reason `HostKeyMismatch: …` or `HostKeyUnverified: …`); nothing was sent to it. */
export const hostKeyRefusedCloseCode = 4012;
/** A newer WebSocket of the same session took over: one live bridge per session. */
export const replacedCloseCode = 4013;

/** The channel a new bridge notifies on; bridges of the session with a lower claim close. */
export const terminalBridgeClaimedChannel = 'terminal_bridge_claimed';
export interface TerminalBridgeClaimedNotice {
  session_id: string;
  claim: number;
}

/** Messages a client sends as JSON text frames (bytes go as binary frames). */
export type TerminalClientMessage =
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'heartbeat' };
