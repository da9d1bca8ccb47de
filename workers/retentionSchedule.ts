import type { Client } from '@temporalio/client';
import { fileTransferRetentionDays } from '../domain/compute/files';
import { retentionSweepKind } from '../domain/retention/kind';
import { makeRetentionScheduleId, type RetentionSweepInput } from '../domain/retention/retention';
import type { Config } from '../platform/config';
import { ensurePlatformSchedule } from './schedules';

type RetentionConfig = Pick<Config, 'SESSIONFLOW_INSTANCE' | 'TEMPORAL_TASK_QUEUE' | 'RETENTION_SANDBOX_EVENTS_DAYS' | 'RETENTION_EXECUTIONS_DAYS' | 'RETENTION_SWEEP_INTERVAL_SECONDS' | 'RETENTION_BATCH_SIZE'>;

/** What each run of the sweep is given: the configured age per table, and the batch size. */
export function retentionSweepInput(config: RetentionConfig): RetentionSweepInput {
  return {
    rules: [
      { table: 'sandbox_events', days: config.RETENTION_SANDBOX_EVENTS_DAYS },
      { table: 'executions', days: config.RETENTION_EXECUTIONS_DAYS },
      // Staged file bytes live for one request: what is older was left by an api that crashed.
      { table: 'compute_file_transfers', days: fileTransferRetentionDays },
    ],
    batchSize: config.RETENTION_BATCH_SIZE,
  };
}

/**
 * The retention sweep's Temporal Schedule, created or brought in line with the configuration
 * (a worker started with new retention settings updates the schedule's input).
 */
export function ensureRetentionSchedule(client: Client, config: RetentionConfig): Promise<string> {
  const instance = config.SESSIONFLOW_INSTANCE;
  return ensurePlatformSchedule(client, {
    manifest: retentionSweepKind, scheduleId: makeRetentionScheduleId(instance), instance, taskQueue: config.TEMPORAL_TASK_QUEUE,
    intervalSeconds: config.RETENTION_SWEEP_INTERVAL_SECONDS, summary: `Retention sweep (${instance})`, args: [retentionSweepInput(config)],
  });
}
