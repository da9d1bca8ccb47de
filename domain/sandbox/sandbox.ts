import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/**
 * Chat sandboxes (seed 003): one sandbox container per chat, owned by one entity workflow
 * `sandbox/<chatId>`. Everything the api and the workflows exchange lives here.
 */

/**
 * The canonical form of a chat id: a lowercase, hyphenated UUID. The 32-hex form names the
 * same chat (the seed's `UUID('1111…')`), so both map to one workflow id and one sandbox.
 */
export function canonicalChatId(raw: string): string | undefined {
  const trimmed = raw.trim().toLowerCase();
  const hex = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(trimmed)
    ? trimmed.replace(/-/g, '')
    : /^[0-9a-f]{32}$/.test(trimmed) ? trimmed : undefined;
  if (!hex) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * One workflow per chat, keyed by the canonical chat id: Temporal's workflow-id uniqueness
 * plus update-with-start is what serialises concurrent ensures for a chat — no lock of ours.
 */
export function makeSandboxWorkflowId(chatId: string): string {
  return `sandbox/${chatId}`;
}

/** The cleanup sweep of one deployment; a Temporal Schedule starts it. */
export function makeSandboxSweepScheduleId(instance: string): string {
  return `sandbox-sweep/${instance}`;
}

/**
 * The container a sandbox session runs in is named after the session id, so a create retried
 * after a crash finds the container the lost attempt made instead of making a second one.
 */
export function sandboxContainerName(sessionId: string): string {
  return `sf-sandbox-${sessionId}`;
}

/**
 * CREATING: row written, container being made. RUNNING: usable. EXPIRED: its TTL passed, the
 * container still exists until the sweep or the next ensure stops it. STOPPED: gone.
 */
export type SandboxStatus = 'CREATING' | 'RUNNING' | 'EXPIRED' | 'STOPPED';

/**
 * Why a sandbox was stopped: the read model keeps the first reason. `lost`: its container died
 * (killed, the engine restarted); `failed`: its create failed and what it made was removed.
 */
export type StopReason = 'replaced' | 'expired' | 'stopped' | 'lost' | 'failed';

/** A sandbox session; plain data (ISO strings) so it crosses continue-as-new unchanged. */
export interface SandboxRecord {
  sessionId: string;
  chatId: string;
  ownerId: string;
  containerName: string;
  containerId: string;
  status: SandboxStatus;
  createdAt: string;
  expiresAt: string;
}

/** The seed's rule: a sandbox whose expiry is now or earlier is expired (the boundary counts). */
export function isExpired(sandbox: Pick<SandboxRecord, 'expiresAt'>, nowMs: number): boolean {
  return Date.parse(sandbox.expiresAt) <= nowMs;
}

export interface SandboxWorkflowInput {
  chatId: string;
  ownerId: string;
  /** Absolute lifetime of each sandbox from its creation (SANDBOX_TTL_SECONDS), unless an ensure says otherwise. */
  ttlMs: number;
  /** The sandbox carried over a continue-as-new; absent on the first run. */
  current?: SandboxRecord | null;
  /** Continue as new past this many history events (tests use a small one); 2000 by default. */
  historyLimit?: number;
}

/** Who asks: the chat's owner, or an admin acting for them. */
export interface SandboxRequester {
  ownerId: string;
}

interface EnsureSandboxRequest extends SandboxRequester {
  /** The lifetime of a sandbox created by this ensure; the workflow's own when absent. */
  ttlMs?: number;
  /** Live sandboxes the owner may hold (SANDBOX_MAX_PER_USER); a create past it is refused. Unlimited when absent. */
  maxPerUser?: number;
}

/** What an ensure's create asks of the worker: the planned sandbox, and the owner's limit. */
export type SandboxPlan = Omit<SandboxRecord, 'containerId' | 'status'> & { maxPerUser?: number };

/** How a sandbox's container was found dead: removed (`gone`) or no longer running. */
export interface ContainerDeath {
  /** Docker's state (`exited`, `dead`, …), or `gone` when the container no longer exists. */
  state: string;
  exitCode?: number;
  oomKilled?: boolean;
}

export function describeDeath({ state, exitCode, oomKilled }: ContainerDeath): string {
  if (state === 'gone') return 'its container was removed';
  return `its container is ${state}${exitCode === undefined ? '' : ` (exit code ${exitCode}${oomKilled ? ', killed for lack of memory' : ''})`}`;
}

export interface EnsureSandboxResult {
  sandbox: SandboxRecord;
  reused: boolean;
}

interface SandboxExecRequest extends SandboxRequester {
  /** argv run in the sandbox's working directory. */
  command: string[];
  stdin?: string;
  timeoutMs: number;
}

export interface SandboxExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  timedOut: boolean;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
}

/** The sweep's order to one chat: stop the session it saw expired, unless it was replaced since. */
interface CleanupOrder {
  sessionId: string;
}

/** Ensure: return the active sandbox, or replace an expired one, or create one. */
export const ensureSandboxUpdate = defineUpdate<EnsureSandboxResult, [EnsureSandboxRequest]>('ensureSandbox');
/** Stop the chat's sandbox (idempotent); resolves with the stopped session, or null when none. */
export const stopSandboxUpdate = defineUpdate<SandboxRecord | null, [SandboxRequester]>('stopSandbox');
/** Run a command in the chat's active sandbox. */
export const execInSandboxUpdate = defineUpdate<SandboxExecResult, [SandboxExecRequest]>('execInSandbox');
export const cleanupExpiredSignal = defineSignal<[CleanupOrder]>('cleanupExpired');
export const currentSandboxQuery = defineQuery<SandboxRecord | null>('currentSandbox');

/**
 * The seed's structured log events (names verbatim), plus a user's explicit stop and a sandbox
 * found with its container dead (`sandbox_lost`, the container's state as `error`).
 */
export const sandboxEvents = ['sandbox_created', 'sandbox_reused', 'sandbox_replaced', 'sandbox_cleaned', 'sandbox_clean_failed', 'sandbox_stopped', 'sandbox_lost'] as const;
export type SandboxEventName = (typeof sandboxEvents)[number];

export interface SandboxEvent {
  event: SandboxEventName;
  chatId: string;
  sessionId: string;
  containerId: string;
  /** The failure's type, for sandbox_clean_failed; the container's state, for sandbox_lost. */
  error?: string;
}

export interface SandboxSweepInput {
  /** Only this owner's chats (tests, and an admin cleaning one user); all chats when absent. */
  ownerId?: string;
}

export interface SandboxSweepReport {
  signalled: number;
  orphansRemoved: number;
}

/** Exec limits: output beyond this many bytes per stream is cut (and flagged). */
export const sandboxExecOutputLimitBytes = 64 * 1024;
export const sandboxExecMaxTimeoutMs = 120_000;
