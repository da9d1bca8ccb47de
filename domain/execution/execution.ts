import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/**
 * Code execution (seed 001): the runtimes Piston clients can ask for, the messages between the
 * api, the per-execution workflow and the per-runtime pool workflow, and their ids.
 */
export interface RuntimeSpec {
  language: string;
  /** The version Debian bookworm installs in sessionflow/runtimes (a test checks the image). */
  version: string;
  aliases: string[];
  /** Piston's optional `runtime` field: the program that runs the code. */
  runtime?: string;
  /** The entry file name when the request gives none. */
  defaultFile: string;
  /** `{file}` is the entry file, `{files}` every file of the request. */
  compile?: string[];
  run: string[];
}

export const runtimes: readonly RuntimeSpec[] = [
  { language: 'python', version: '3.11.2', aliases: ['py', 'py3', 'python3'], runtime: 'cpython', defaultFile: 'main.py', run: ['python3', '-u', '{file}'] },
  { language: 'javascript', version: '18.20.4', aliases: ['node', 'node-js', 'nodejs', 'js'], runtime: 'node', defaultFile: 'main.js', run: ['node', '{file}'] },
  { language: 'bash', version: '5.2.15', aliases: ['sh'], defaultFile: 'main.sh', run: ['bash', '{file}'] },
  { language: 'c', version: '12.2.0', aliases: ['gcc'], runtime: 'gcc', defaultFile: 'main.c', compile: ['gcc', '-O2', '-std=c17', '-o', 'a.out', '{files}', '-lm'], run: ['./a.out'] },
];

/** Piston's matching: a language or alias, and a version that is '*' or a prefix of ours. */
export function findRuntime(language: string, version: string): RuntimeSpec | undefined {
  const wanted = language.toLowerCase();
  return runtimes.find((r) => (r.language === wanted || r.aliases.includes(wanted)) && (version === '*' || r.version.startsWith(version.replace(/^v/, ''))));
}

export interface SourceFile {
  name: string;
  /** base64, whatever encoding the request used. */
  content: string;
}

/** One stage (compile or run) as the runner carries it out. */
export interface StageSpec {
  command: string[];
  timeoutMs: number;
  /** Bytes of address space; -1 for the container's limit only. */
  memoryLimit: number;
}

/** Everything the runner needs, resolved by the api from the request, the runtime and config. */
export interface ExecutionJob {
  requestId: string;
  language: string;
  version: string;
  files: SourceFile[];
  stdin: string;
  args: string[];
  compile?: StageSpec;
  run: StageSpec;
  outputLimit: number;
  /** A session keeps its work directory between executions; a stateless run gets a fresh one. */
  sessionKey?: string;
}

export type StageStatus = 'RE' | 'SG' | 'TO' | 'OL' | 'EL' | 'XX';

/** Piston v2's stage result. */
export interface StageResult {
  stdout: string;
  stderr: string;
  output: string;
  code: number | null;
  signal: string | null;
  message: string | null;
  status: StageStatus | null;
  cpu_time: number;
  wall_time: number;
  memory: number;
}

export interface ExecutionResult {
  language: string;
  version: string;
  run?: StageResult;
  compile?: StageResult;
}

/**
 * A job the runner turned down before running any of it: the file (its index in the request)
 * it could not write in the work directory — in a session, something an earlier program left
 * is in the way — and the file system's reason. The request's problem, not the container's.
 */
export interface UnwritableFile {
  index: number;
  reason: string;
}

export interface CodeExecutionInput {
  job: ExecutionJob;
  ownerId: string;
  /** The pool workflow that leased the container and gets it back. */
  poolWorkflowId: string;
  lease: Lease;
  /** Output kept in workflow history per stream; the api still returns the full capped output. */
  historyOutputCap: number;
}

export interface Lease {
  leaseId: string;
  containerId: string;
  /** A fresh container (created for this request) — a cold start. */
  cold: boolean;
}

/** Pool settings, from config (the api passes them at start and on continue-as-new). */
export interface PoolSettings {
  runtime: string;
  image: string;
  readySessions: number;
  maxContainers: number;
  cooldownMs: number;
  acquireWaitMs: number;
  /** A lease not returned by then (a lost execution) retires its container. */
  leaseTtlMs: number;
  /** Continue as new after this many handed-out leases, to keep history short. */
  leasesPerRun: number;
  /**
   * Fair shares: the most containers one owner may hold leased at once, and the most session
   * containers (idle or leased) one owner may keep. Absent in pools started before them: no limit.
   */
  maxLeasesPerOwner?: number;
  maxSessionsPerOwner?: number;
}

export interface PoolContainer {
  containerId: string;
  /** `in-use-orphan`: left by an earlier run while an execution may still run in it; goes at the lease TTL. */
  state: 'starting' | 'ready' | 'leased' | 'idle-session' | 'retiring' | 'in-use-orphan';
  sessionKey?: string;
  leaseId?: string;
  /** Who holds it (leased) or keeps it (an idle session); absent in pools started before fair shares. */
  ownerId?: string;
  /** Workflow time (ms) of the last hand-out or return. */
  lastUsedAt: number;
}

export interface PoolState {
  settings: PoolSettings;
  containers: PoolContainer[];
  leasesHandedOut: number;
}

export interface AcquireRequest {
  leaseId: string;
  /** Whose execution it is: fair shares count containers per owner. */
  ownerId?: string;
  sessionKey?: string;
  /** How long the pool may keep the request waiting at the cap (what is left of the api's wait). */
  waitMs?: number;
}

interface ReleaseRequest {
  leaseId: string;
  /** The container is no longer trustworthy (the run failed inside Docker): retire it. */
  retire: boolean;
  /** Lets a pool's later run recognise a container an earlier run leased (absent from older executions). */
  containerId?: string;
}

export const acquireUpdate = defineUpdate<Lease, [AcquireRequest]>('acquire');
export const releaseSignal = defineSignal<[ReleaseRequest]>('release');
export const poolStateQuery = defineQuery<PoolState>('poolState');

/**
 * One pool per runtime per task queue (a deployment's workers): Temporal's id uniqueness makes
 * it a singleton, and two deployments (or test harnesses) on one server never share a pool.
 */
export function makePoolWorkflowId(taskQueue: string, runtime: string): string {
  return `execution-pool/${taskQueue}/${runtime}`;
}

/** Executions are keyed by the request id the api makes: independent, never serialised. */
export function makeExecutionWorkflowId(requestId: string): string {
  return `exec/${requestId}`;
}

/**
 * A caller's session identifier is scoped to the user, so two users choosing the same
 * identifier get two containers.
 */
export function makeSessionKey(ownerId: string, sessionId: string): string {
  return `${ownerId}/${sessionId}`;
}

/** What the execution workflow keeps in its history: output streams cut to `cap` characters. */
export function capForHistory(result: ExecutionResult, cap: number): { result: ExecutionResult; truncated: boolean } {
  let truncated = false;
  const cut = (text: string) => {
    if (text.length <= cap) return text;
    truncated = true;
    return text.slice(0, cap);
  };
  const stage = (s: StageResult | undefined) => s && { ...s, stdout: cut(s.stdout), stderr: cut(s.stderr), output: cut(s.output) };
  const capped: ExecutionResult = { language: result.language, version: result.version };
  if (result.compile) capped.compile = stage(result.compile);
  if (result.run) capped.run = stage(result.run);
  return { result: capped, truncated };
}

/** An execution's own status: OK, a failed compile (CE), or the failing stage's Piston status. */
export type ExecutionStatus = 'OK' | 'CE' | StageStatus;

/**
 * One word for the read model and the Web UI: the failing stage's status, or OK; XX when no
 * stage ran (the runner turned the job down).
 */
export function executionStatus(result: ExecutionResult): ExecutionStatus {
  return result.compile?.status ?? (result.compile && result.compile.code !== 0 ? 'CE' : undefined) ?? result.run?.status ?? (result.run ? 'OK' : 'XX');
}
