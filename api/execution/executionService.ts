import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import type { Config } from '../../platform/config';
import { poolSettingsFrom } from '../../platform/executionSettings';
import { chooseExecutor, createLocalExecutor, createTemporalExecutor, type Executor } from './executors';
import type { ExecutionConfig } from './routes';

export type ExecutionServiceConfig = ExecutionConfig & Pick<Config,
  'TEMPORAL_TASK_QUEUE' | 'USE_LOCAL_EXECUTOR' | 'EXECUTION_IMAGE' | 'EXECUTION_READY_SESSIONS' | 'EXECUTION_MAX_CONTAINERS' |
  'EXECUTION_COOLDOWN_SECONDS' | 'EXECUTION_ACQUIRE_WAIT_MS' | 'EXECUTION_MAX_IN_FLIGHT_PER_USER' | 'EXECUTION_MAX_SESSIONS_PER_USER' | 'EXECUTION_HISTORY_OUTPUT_BYTES' | 'EXECUTION_LEASES_PER_RUN'>;

/** The executor the execute route uses, picked once: the container pool, or the local fallback. */
export function createExecutionService(deps: { config: ExecutionServiceConfig; temporal: Client; executionClient?: Client; pool: Pool; docker: Docker }): () => Promise<Executor> {
  const { config } = deps;
  return chooseExecutor(
    config.USE_LOCAL_EXECUTOR,
    deps.docker,
    () => createTemporalExecutor({
      temporal: deps.executionClient ?? deps.temporal,
      pool: deps.pool,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      poolSettings: (runtime) => poolSettingsFrom(config, runtime),
      historyOutputCap: config.EXECUTION_HISTORY_OUTPUT_BYTES,
      eagerStart: deps.executionClient !== undefined,
    }),
    () => createLocalExecutor(deps.pool),
  );
}
