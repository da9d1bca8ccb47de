import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AbuseFinding, KernelUsage } from './abuse';
import type { ComputeStatus } from './status';

/** Resources of one kernel, or free/total amounts: cpu in thousandths of a core, memory in bytes, gpu in (fractional) devices. */
export interface ResourceSlots {
  cpuMillis: number;
  memoryBytes: number;
  gpu: number;
}

export const clusterModes = ['single-node', 'multi-node'] as const;
export type ClusterMode = (typeof clusterModes)[number];

/** One kernel of a session as admitted: its name in the cluster (`main1`, `sub1`, …); the node comes from scheduling. */
export interface KernelPlan {
  kernelId: string;
  role: 'main' | 'sub';
  idx: number;
  hostname: string;
}

/** Where the scheduler put a kernel: the node and the task queue of that node's worker. */
export interface KernelPlacement extends KernelPlan {
  node: string;
  taskQueue: string;
}

/**
 * What a session workflow starts with: ids and the settings it acts on. No secret travels here:
 * secret_env is sealed in PostgreSQL and named by `secretId`, which only a node activity opens.
 */
export interface ComputeSessionInput {
  sessionId: string;
  ownerId: string;
  name: string;
  /** name:tag as the user wrote it, and the registry reference nodes pull. */
  image: string;
  imageReference: string;
  scalingGroup: string;
  clusterMode: ClusterMode;
  kernels: KernelPlan[];
  resources: ResourceSlots;
  env: Record<string, string>;
  secretId?: string;
  vfolders: string[];
  bootstrapScript?: string;
  /** Seconds the bootstrap script may run (default 1800): longer, and the session fails with BootstrapFailed. */
  bootstrapTimeoutSeconds?: number;
  dependencies: string[];
  priority: number;
  /** Epoch milliseconds: not before (starts_at), and the end of waiting while PENDING (max_wait). */
  startsAt?: number;
  pendingDeadline?: number;
  idleTimeoutSeconds?: number;
  maxLifetimeSeconds?: number;
  /** Production leaves these to their defaults; tests shorten them. */
  timings?: Partial<ComputeTimings>;
  /** What a run that continued as new hands on (plain data only). */
  resumed?: ComputeSessionCarry;
}

export interface ComputeTimings {
  /** A node's worker that takes no task for this long is dead to the session: AgentNotAvailable. */
  agentTimeoutSeconds: number;
  /** How often a PENDING session looks again at its dependencies and for room, besides being woken. */
  pendingRetrySeconds: number;
  /** Past this many events a long-lived session continues as new. */
  historyLimit: number;
}

export const defaultComputeTimings: ComputeTimings = { agentTimeoutSeconds: 30, pendingRetrySeconds: 10, historyLimit: 2000 };

export interface ComputeSessionCarry {
  state: ComputeSessionState;
  /** Epoch milliseconds (workflow time) of the last action on the session, and of RUNNING. */
  lastActivityAt: number;
  startedAt?: number;
  network?: string;
}

/** The session as its workflow knows it, for the api's answers that must be current (not the read model's). */
export interface ComputeSessionState {
  status: ComputeStatus;
  reason?: string;
  name: string;
  priority: number;
  idleTimeoutSeconds?: number;
  kernels: (KernelPlan & { node?: string; taskQueue?: string; containerId?: string })[];
}

export interface DestroyRequest {
  forced: boolean;
  reason?: string;
  /** Kept with the TERMINATING row of the status history (an end for abuse: the figures). */
  details?: Record<string, unknown>;
}

export interface ModifyRequest {
  name?: string;
  priority?: number;
  /** 0 turns the idle timeout off. */
  idleTimeoutSeconds?: number;
}

export const computeStateQuery = defineQuery<ComputeSessionState>('computeState');
/** Answers once the session is TERMINATING or ended (InvalidSessionState while it is being created, unless forced). */
export const destroyUpdate = defineUpdate<ComputeSessionState, [DestroyRequest]>('destroy');
/** Answers when the session is RUNNING or has ended, or after `timeoutMs` with the status then (the api's create waits on it unless enqueue_only). */
export const awaitStartUpdate = defineUpdate<ComputeSessionState, [{ timeoutMs: number }]>('awaitStart');
export const restartUpdate = defineUpdate<ComputeSessionState, []>('restart');
export const modifyUpdate = defineUpdate<ComputeSessionState, [ModifyRequest]>('modify');
/** Another session ended, or room freed in the scaling group: look again at dependencies and placement. */
export const wakeSignal = defineSignal('wake');
/** The reconciler's nudge: look at the kernels (a container gone, a node dead) and the PENDING deadline now. */
export const checkAndTransitSignal = defineSignal<[{ reason: string }]>('checkAndTransitSignal');
/** The same look, asked by an admin for a list of sessions: answers with the status after it. */
export const checkAndTransitUpdate = defineUpdate<ComputeSessionState, [{ reason: string }]>('checkAndTransit');

/**
 * What a kernel keeps of each output stream of a run and answers with (bytes; beyond it the
 * output is cut and marked truncated). Small on purpose: a result travels through the session
 * workflow's history twice (the activity's result and the update's).
 */
export const kernelOutputLimitBytes = 64 * 1024;

export const executeModes = ['query', 'batch', 'input', 'continue'] as const;
export type ExecuteMode = (typeof executeModes)[number];

/**
 * One request to a run in the main kernel. `query` starts a notebook cell in the persistent
 * namespace, `batch` a build then an exec command in the shell; `input` feeds a line to a run
 * that answered waiting-input, `continue` asks a run for what comes next.
 */
export interface ExecuteRequest {
  /** Absent in histories written before modes existed: query. */
  mode?: ExecuteMode;
  /** Made by the api when the client gives none; the same id again answers the first run's first answer. */
  runId: string;
  /** query: the cell; batch: the exec command unless `exec` is given; input: the line fed to input(). */
  code: string;
  build?: string;
  exec?: string;
  /** What input() (or the command) reads, fed up front (EOF after it); without it input() makes the run wait. */
  stdin?: string;
  timeoutMs: number;
  /** How long this request waits for the run's next answer before answering `continued` (default: until it comes). */
  waitMs?: number;
  /** input and continue: the api's id of this request, so that a retried one answers the same segment. */
  requestId?: string;
}

export type KernelRunStatus = 'finished' | 'waiting-input' | 'continued';

/** One answer of a run: the output written since its previous answer, and at the end its exit code and result. */
export interface KernelRunResult {
  runId: string;
  status: KernelRunStatus;
  /** null until the run has finished. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The value of the last expression, else of `result` when the code assigns it: JSON when it is, else null (see resultRepr). */
  result: unknown;
  resultRepr: string | null;
  truncated: boolean;
  /** Ended by an interrupt (KeyboardInterrupt). */
  interrupted: boolean;
}

export interface KernelCompletion {
  candidates: string[];
}

/** Starts, feeds or follows a run in the main kernel; InvalidSessionState unless RUNNING or while another run goes on; ExecutionTimeout past the timeout. */
export const executeUpdate = defineUpdate<KernelRunResult, [ExecuteRequest]>('execute');
/** KeyboardInterrupt in the run if it is going on; a finished or unknown run is fine (idempotent). */
export const interruptUpdate = defineUpdate<{ runId: string; running: boolean }, [{ runId: string }]>('interrupt');
/** Completion candidates from the main kernel's interpreter at `position` of `code` (default: the end). */
export const completeUpdate = defineUpdate<KernelCompletion, [{ code: string; position?: number }]>('complete');

/**
 * What a kernel's log answer keeps (bytes of text, per kernel; the newest lines win and the
 * answer says truncated). Bounded because it travels through the session workflow's history.
 */
export const kernelLogLimitBytes = 256 * 1024;

/** One line of a kernel's container log: the engine's timestamp (ISO, nanoseconds) and which stream. */
export interface KernelLogLine {
  at: string;
  stream?: 'stdout' | 'stderr';
  text: string;
}

export interface KernelLogs {
  kernelId: string;
  hostname: string;
  lines: KernelLogLine[];
  truncated: boolean;
}

/** since/until: epoch seconds (Docker's unit), both inclusive of what the engine counts in. */
export interface LogsRequest {
  kernelId?: string;
  since?: number;
  until?: number;
}

/** The container logs of every kernel (or one); allowed while the session has kernels (RUNNING, RESTARTING, TERMINATING). */
export const logsUpdate = defineUpdate<KernelLogs[], [LogsRequest]>('logs');

/** Each kernel's resource use now, measured on its node (two samples a second apart); RUNNING only. */
export const kernelUsageUpdate = defineUpdate<{ kernelId: string; hostname: string; node: string; usage: KernelUsage }[], []>('kernelUsage');
/** The reconciler found a kernel abusing at consecutive looks and its owner's action is terminate: a RUNNING session ends with reason abuse. */
export const abuseTerminationSignal = defineSignal<[AbuseFinding]>('terminateForAbuse');
