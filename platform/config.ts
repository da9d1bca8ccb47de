import { z } from 'zod';
import { containerRuntimeSettings } from '../activities/shared/containerRuntime';
import { parseCpu, parseGpu, parseMemory } from '../domain/compute/resources';
import { defaultTaskQueue } from '../domain/shared/taskQueues';

/**
 * Configuration comes from the environment only, validated once at start: a typo fails the
 * process with the variable's name instead of surfacing as a strange error later. Every
 * default here is the embedded single-machine setup that scripts/up.sh brings up;
 * the configuration table in docs/configuration.md lists the same variables (a unit test keeps them in step).
 */
const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /**
   * Names this deployment on a shared Docker engine: every container carries it as a label,
   * and reconcilers only ever remove containers of their own instance.
   */
  SESSIONFLOW_INSTANCE: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lowercase letters, digits, _ . -').default('sessionflow'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/sessionflow'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5_000),
  DATABASE_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(defaultTaskQueue),
  TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  DOCKER_SOCKET: z.string().min(1).default('/var/run/docker.sock'),
  /**
   * The OCI runtime of session containers (executions, sandboxes, the self-check's probe):
   * `auto` takes gVisor (`runsc`) when the engine has it and says so when it falls back to runc.
   */
  CONTAINER_RUNTIME: z.enum(containerRuntimeSettings).default('auto'),
  BASE_IMAGE: z.string().min(1).default('sessionflow/base:bookworm'),
  REGISTRY_ADDRESS: z.string().regex(/^[\w.-]+(:\d+)?$/, 'host:port').default('127.0.0.1:5000'),
  WORKFLOW_BUNDLE_PATH: z.string().min(1).default('dist/workflow-bundle.js'),
  REQUEST_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'a size such as 1mb').default('1mb'),
  /** Requests one API key may make per window on the authenticated api (429 RateLimited past it); 0 turns the limit off. */
  API_RATE_LIMIT_REQUESTS: z.coerce.number().int().min(0).max(1_000_000).default(6000),
  API_RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(60),
  /** A chat sandbox's absolute lifetime from its creation (the seed's 5 minutes). */
  SANDBOX_TTL_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(300),
  /** How often the scheduled cleanup sweeps expired sandboxes and orphan containers. */
  SANDBOX_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(60),
  /** Live chat sandboxes one user may hold at once; the next create is refused (429) until one ends. */
  SANDBOX_MAX_PER_USER: z.coerce.number().int().min(1).max(10_000).default(10),
  // Each chat sandbox container's limits (the worker reads them when it creates one).
  SANDBOX_MEMORY_LIMIT_MB: z.coerce.number().int().min(32).default(256),
  SANDBOX_CPUS: z.coerce.number().positive().max(64).default(1),
  SANDBOX_PIDS_LIMIT: z.coerce.number().int().min(8).default(128),
  SANDBOX_FILE_SIZE_LIMIT_BYTES: z.coerce.number().int().min(1024).default(32 * 1024 * 1024),
  SANDBOX_WORKSPACE_BYTES: z.coerce.number().int().min(1024 * 1024).default(64 * 1024 * 1024),
  SANDBOX_TMP_BYTES: z.coerce.number().int().min(1024 * 1024).default(16 * 1024 * 1024),
  /** Retention: days a sandbox event row and an execution row are kept (0: for ever), and the sweep's pace. */
  RETENTION_SANDBOX_EVENTS_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  RETENTION_EXECUTIONS_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  RETENTION_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(60).max(7 * 24 * 3600).default(3600),
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1000),
  // Code execution (seed 001): the pool per runtime, the limits of each execution.
  EXECUTION_IMAGE: z.string().min(1).default('sessionflow/runtimes:bookworm'),
  /** `true` (or Docker unreachable at start): executions run as local subprocesses instead. */
  USE_LOCAL_EXECUTOR: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** The local executor runs user code as the api's own user: production refuses it unless this says so. */
  ALLOW_LOCAL_EXECUTOR_IN_PRODUCTION: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** `true`: the api process runs an execution worker of its own and starts executions eagerly (no matching hop). */
  EXECUTION_WORKER_IN_API: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  EXECUTION_READY_SESSIONS: z.coerce.number().int().min(0).max(64).default(1),
  EXECUTION_MAX_CONTAINERS: z.coerce.number().int().min(1).max(256).default(8),
  EXECUTION_COOLDOWN_SECONDS: z.coerce.number().int().min(1).default(300),
  EXECUTION_ACQUIRE_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /** Leases a pool hands out before it continues as new (bounds its history). */
  EXECUTION_LEASES_PER_RUN: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Fair shares of one runtime's pool: what one user may hold leased, and keep as session containers. */
  EXECUTION_MAX_IN_FLIGHT_PER_USER: z.coerce.number().int().min(1).max(256).default(4),
  EXECUTION_MAX_SESSIONS_PER_USER: z.coerce.number().int().min(1).max(256).default(4),
  EXECUTION_RUN_TIMEOUT_MS: z.coerce.number().int().min(1).default(3000),
  EXECUTION_MAX_RUN_TIMEOUT_MS: z.coerce.number().int().min(1).default(15_000),
  EXECUTION_COMPILE_TIMEOUT_MS: z.coerce.number().int().min(1).default(10_000),
  EXECUTION_MAX_COMPILE_TIMEOUT_MS: z.coerce.number().int().min(1).default(30_000),
  EXECUTION_OUTPUT_LIMIT_BYTES: z.coerce.number().int().min(1).default(65_536),
  EXECUTION_HISTORY_OUTPUT_BYTES: z.coerce.number().int().min(0).default(4096),
  EXECUTION_MEMORY_LIMIT_MB: z.coerce.number().int().min(16).default(256),
  EXECUTION_CPUS: z.coerce.number().positive().max(64).default(1),
  EXECUTION_PIDS_LIMIT: z.coerce.number().int().min(8).default(64),
  EXECUTION_FILE_SIZE_LIMIT_BYTES: z.coerce.number().int().min(1024).default(10 * 1024 * 1024),
  EXECUTION_WORK_DIR_BYTES: z.coerce.number().int().min(1024 * 1024).default(64 * 1024 * 1024),
  /** Terminals: base64 of 32 bytes sealing host credentials (AES-256-GCM); scripts/up.sh keeps one in SESSIONFLOW_HOME. */
  TERMINAL_CREDENTIALS_KEY: z.base64().refine((value) => Buffer.from(value, 'base64').length === 32, 'base64 of exactly 32 bytes').optional(),
  TERMINAL_SESSION_TTL_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(1800),
  TERMINAL_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(120),
  TERMINAL_MAX_ACTIVE_SESSIONS: z.coerce.number().int().min(1).max(1000).default(3),
  /** Extra origins allowed to open terminal WebSockets (comma-separated); the api's own origin always is. */
  TERMINAL_ALLOWED_ORIGINS: z.string().default(''),
  /** At most one heartbeat per session per this many ms reaches its workflow; the others are answered without it. */
  TERMINAL_HEARTBEAT_MIN_INTERVAL_MS: z.coerce.number().int().min(0).max(3_600_000).default(1000),
  /** Compute sessions: base64 of 32 bytes sealing secret_env and cluster SSH keys (AES-256-GCM); scripts/up.sh keeps one in SESSIONFLOW_HOME. */
  COMPUTE_SECRETS_KEY: z.base64().refine((value) => Buffer.from(value, 'base64').length === 32, 'base64 of exactly 32 bytes').optional(),
  /** The kernel image as nodes pull it from the registry (scripts/push-images.sh pushes it there). */
  COMPUTE_KERNEL_IMAGE: z.string().min(1).default('127.0.0.1:5000/sessionflow/kernel-python:bookworm'),
  /** The worker process is also a compute node (polls `node/<COMPUTE_NODE_NAME>` with this engine); `false` leaves that to separate node workers. */
  COMPUTE_NODE_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  COMPUTE_NODE_NAME: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lowercase letters, digits, _ . -').default('local'),
  /** Declared capacity (cores; default: the host's); the scheduler places kernels within it. */
  COMPUTE_NODE_CPU: z.coerce.number().positive().max(4096).optional(),
  /** Declared memory: bytes, or with a binary suffix (`16G`, `512M`); default: the host's. */
  COMPUTE_NODE_MEMORY: z.string().refine((v) => parseMemory(v) !== undefined, 'bytes, or an amount such as 16G').transform((v) => parseMemory(v)!).optional(),
  /** Declared GPU slots (accounting only where no GPU exists). */
  COMPUTE_NODE_GPU: z.coerce.number().min(0).max(1024).default(0),
  COMPUTE_NODE_SCALING_GROUP: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lowercase letters, digits, _ . -').default('default'),
  COMPUTE_NODE_HEARTBEAT_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  // Compute sessions (seed 000): the policy of a user without a row of their own (amounts as the api writes them).
  COMPUTE_DEFAULT_MAX_SESSIONS: z.coerce.number().int().min(0).max(10_000).default(8),
  COMPUTE_DEFAULT_CPU: z.string().refine((v) => parseCpu(v) !== undefined, 'cores such as 8 or 0.5').default('8'),
  COMPUTE_DEFAULT_MEMORY: z.string().refine((v) => parseMemory(v) !== undefined, 'an amount such as 16G').default('16G'),
  COMPUTE_DEFAULT_GPU: z.string().refine((v) => parseGpu(v) !== undefined, 'devices such as 0 or 1').default('0'),
  /** Images of their own (converted sessions) a user may hold, unless their resource policy says otherwise. */
  COMPUTE_DEFAULT_MAX_CUSTOMIZED_IMAGES: z.coerce.number().int().min(0).max(10_000).default(10),
  // ...and its abuse thresholds, in % of a kernel's allocation, and the reconciler's action on a kernel abusing at two consecutive looks.
  COMPUTE_DEFAULT_ABUSE_CPU_WARNING_PERCENT: z.coerce.number().gt(0).max(100).default(80),
  COMPUTE_DEFAULT_ABUSE_CPU_PERCENT: z.coerce.number().gt(0).max(100).default(95),
  COMPUTE_DEFAULT_ABUSE_MEMORY_PERCENT: z.coerce.number().gt(0).max(100).default(95),
  COMPUTE_DEFAULT_ABUSE_ACTION: z.enum(['warn', 'terminate']).default('warn'),
  /** A node whose last heartbeat is older than this is dead: nothing is placed on it, its sessions are handled. */
  COMPUTE_NODE_DEAD_AFTER_SECONDS: z.coerce.number().int().min(2).max(3600).default(30),
  /** A node worker that takes no task of a session for this long is AgentNotAvailable to it. */
  COMPUTE_AGENT_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** How long a create without enqueue_only waits for RUNNING before it answers with the status then. */
  COMPUTE_CREATE_WAIT_SECONDS: z.coerce.number().int().min(0).max(600).default(60),
  /** Bytes one download of a compute session's files may hold (a file, or a tar): more is DownloadTooLarge. */
  COMPUTE_DOWNLOAD_MAX_BYTES: z.coerce.number().int().min(1).max(2 ** 40).default(256 * 1024 * 1024),
  /** File uploads and downloads of one user going on at once, per api process (each may hold ~30 MB of body). */
  COMPUTE_TRANSFERS_PER_USER: z.coerce.number().int().min(1).max(1000).default(4),
  /** Interval of the Temporal Schedule that runs check-and-transit over live compute sessions. */
  COMPUTE_RECONCILE_INTERVAL_SECONDS: z.coerce.number().int().min(5).max(24 * 3600).default(60),
  /**
   * SSH hosts (terminals, boot servers) registered without a host key get the key they present
   * first pinned (trust on first use); `false`: an admin must give every host key.
   */
  SSH_TRUST_ON_FIRST_USE: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
});

export type Config = z.infer<typeof configSchema>;

export const configKeys = Object.keys(configSchema.shape) as (keyof Config)[];

/** All a chat sandbox can write: its workspace, /tmp and /dev/shm, each a sized tmpfs. */
export function sandboxWritableBytes(config: Pick<Config, 'SANDBOX_WORKSPACE_BYTES' | 'SANDBOX_TMP_BYTES'>): number {
  return config.SANDBOX_WORKSPACE_BYTES + 2 * config.SANDBOX_TMP_BYTES;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(configKeys.filter((key) => env[key] !== undefined && env[key] !== '').map((key) => [key, env[key]]));
  const parsed = configSchema
    .refine((config) => !(config.USE_LOCAL_EXECUTOR && config.NODE_ENV === 'production' && !config.ALLOW_LOCAL_EXECUTOR_IN_PRODUCTION), {
      path: ['USE_LOCAL_EXECUTOR'],
      message: 'the local executor runs user code unisolated, as the api\'s own user: refused with NODE_ENV=production unless ALLOW_LOCAL_EXECUTOR_IN_PRODUCTION=true',
    })
    .refine((config) => sandboxWritableBytes(config) < config.SANDBOX_MEMORY_LIMIT_MB * 1024 * 1024, {
      path: ['SANDBOX_WORKSPACE_BYTES'],
      message: 'a sandbox\'s tmpfs areas (the workspace, plus /tmp and /dev/shm of SANDBOX_TMP_BYTES each) live in its memory: together they must stay below SANDBOX_MEMORY_LIMIT_MB, or a full disk would become an out-of-memory kill',
    })
    // A session heartbeating as often as it may must still be seen well within its idle timeout.
    .refine((config) => config.TERMINAL_HEARTBEAT_MIN_INTERVAL_MS * 2 <= config.TERMINAL_IDLE_TIMEOUT_SECONDS * 1000, {
      path: ['TERMINAL_HEARTBEAT_MIN_INTERVAL_MS'],
      message: 'at most half of TERMINAL_IDLE_TIMEOUT_SECONDS, or heartbeats could not keep a session from going idle',
    })
    .refine((config) => config.COMPUTE_DEFAULT_ABUSE_CPU_WARNING_PERCENT <= config.COMPUTE_DEFAULT_ABUSE_CPU_PERCENT, {
      path: ['COMPUTE_DEFAULT_ABUSE_CPU_WARNING_PERCENT'],
      message: 'at most COMPUTE_DEFAULT_ABUSE_CPU_PERCENT: a kernel warns before it abuses',
    })
    .safeParse(known);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration — ${problems.join('; ')}`);
  }
  return parsed.data;
}
