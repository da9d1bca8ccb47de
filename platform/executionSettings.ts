import type { SandboxLimits } from '../activities/execution/execution';
import { runtimes, type PoolSettings } from '../domain/execution/execution';
import type { Config } from './config';

/** The limits every execution container gets, from config. */
export function sandboxLimitsFrom(config: Config): SandboxLimits {
  return {
    memoryBytes: config.EXECUTION_MEMORY_LIMIT_MB * 1024 * 1024,
    nanoCpus: Math.round(config.EXECUTION_CPUS * 1e9),
    pids: config.EXECUTION_PIDS_LIMIT,
    fileSizeBytes: config.EXECUTION_FILE_SIZE_LIMIT_BYTES,
    workDirBytes: config.EXECUTION_WORK_DIR_BYTES,
  };
}

type PoolConfig = Pick<Config, 'EXECUTION_MAX_RUN_TIMEOUT_MS' | 'EXECUTION_MAX_COMPILE_TIMEOUT_MS' | 'EXECUTION_IMAGE' | 'EXECUTION_READY_SESSIONS' |
  'EXECUTION_MAX_CONTAINERS' | 'EXECUTION_COOLDOWN_SECONDS' | 'EXECUTION_ACQUIRE_WAIT_MS' | 'EXECUTION_MAX_IN_FLIGHT_PER_USER' | 'EXECUTION_MAX_SESSIONS_PER_USER' | 'EXECUTION_LEASES_PER_RUN'>;

/** One runtime's pool settings, from config; the api passes them when it starts the pool. */
export function poolSettingsFrom(config: PoolConfig, runtime: string): PoolSettings {
  const longestRunMs = config.EXECUTION_MAX_RUN_TIMEOUT_MS + config.EXECUTION_MAX_COMPILE_TIMEOUT_MS;
  return {
    runtime,
    image: config.EXECUTION_IMAGE,
    readySessions: config.EXECUTION_READY_SESSIONS,
    maxContainers: config.EXECUTION_MAX_CONTAINERS,
    cooldownMs: config.EXECUTION_COOLDOWN_SECONDS * 1000,
    acquireWaitMs: config.EXECUTION_ACQUIRE_WAIT_MS,
    // A lease outlives the longest allowed execution by a minute before it counts as lost.
    leaseTtlMs: longestRunMs + 60_000,
    leasesPerRun: config.EXECUTION_LEASES_PER_RUN,
    maxLeasesPerOwner: config.EXECUTION_MAX_IN_FLIGHT_PER_USER,
    maxSessionsPerOwner: config.EXECUTION_MAX_SESSIONS_PER_USER,
  };
}

/** The most executions one deployment runs at once: every runtime's pool at its cap. */
export function maxConcurrentExecutions(config: Pick<Config, 'EXECUTION_MAX_CONTAINERS'>): number {
  return runtimes.length * config.EXECUTION_MAX_CONTAINERS;
}
