import type { Client } from '@temporalio/client';
import { computeReconcileKind, makeComputeReconcileScheduleId } from '../domain/compute/kind';
import { sessionStartOptions } from '../domain/shared/kind';
import type { Config } from '../platform/config';
import { ensureIntervalSchedule } from './schedules';

type ReconcileConfig = Pick<Config, 'SESSIONFLOW_INSTANCE' | 'TEMPORAL_TASK_QUEUE' | 'COMPUTE_RECONCILE_INTERVAL_SECONDS'>;

/** Check and transit for compute sessions, as a Temporal Schedule (created, or brought in line with the configuration). */
export function ensureComputeReconcileSchedule(client: Client, config: ReconcileConfig): Promise<string> {
  const instance = config.SESSIONFLOW_INSTANCE;
  return ensureIntervalSchedule(client, {
    scheduleId: makeComputeReconcileScheduleId(instance),
    intervalSeconds: config.COMPUTE_RECONCILE_INTERVAL_SECONDS,
    action: {
      type: 'startWorkflow',
      workflowType: computeReconcileKind.workflowType,
      ...sessionStartOptions(computeReconcileKind, { key: [instance], taskQueue: config.TEMPORAL_TASK_QUEUE, status: 'RUNNING', summary: `Compute check and transit (${instance})` }),
      args: [],
    },
  });
}
