import type { Client } from '@temporalio/client';
import { computeReconcileKind, makeComputeReconcileScheduleId } from '../domain/compute/kind';
import type { Config } from '../platform/config';
import { ensurePlatformSchedule } from './schedules';

type ReconcileConfig = Pick<Config, 'SESSIONFLOW_INSTANCE' | 'TEMPORAL_TASK_QUEUE' | 'COMPUTE_RECONCILE_INTERVAL_SECONDS'>;

/** Check and transit for compute sessions, as a Temporal Schedule (created, or brought in line with the configuration). */
export function ensureComputeReconcileSchedule(client: Client, config: ReconcileConfig): Promise<string> {
  const instance = config.SESSIONFLOW_INSTANCE;
  return ensurePlatformSchedule(client, {
    manifest: computeReconcileKind, scheduleId: makeComputeReconcileScheduleId(instance), instance, taskQueue: config.TEMPORAL_TASK_QUEUE,
    intervalSeconds: config.COMPUTE_RECONCILE_INTERVAL_SECONDS, summary: `Compute check and transit (${instance})`, args: [],
  });
}
