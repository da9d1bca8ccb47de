import type { ChatSandboxLimits } from '../activities/sandbox/sandbox';
import type { Config } from './config';

/** The limits every chat sandbox container gets, from config. */
export function chatSandboxLimitsFrom(config: Config): ChatSandboxLimits {
  return {
    memoryBytes: config.SANDBOX_MEMORY_LIMIT_MB * 1024 * 1024,
    nanoCpus: Math.round(config.SANDBOX_CPUS * 1e9),
    pids: config.SANDBOX_PIDS_LIMIT,
    fileSizeBytes: config.SANDBOX_FILE_SIZE_LIMIT_BYTES,
    workspaceBytes: config.SANDBOX_WORKSPACE_BYTES,
    tmpBytes: config.SANDBOX_TMP_BYTES,
  };
}
