import { defineSessionWorkflow } from '../shared/kind';
import { makeRetentionScheduleId } from './retention';

/** One run of the scheduled retention sweep (its id is the schedule's plus the run's time, made by Temporal). */
export const retentionSweepKind = defineSessionWorkflow({
  kind: 'retention',
  workflowType: 'retentionSweepWorkflow',
  workflowId: (instance: string) => `${makeRetentionScheduleId(instance)}/run`,
  lifecycle: { RUNNING: 'RUNNING', SWEPT: 'ENDED', FAILED: 'FAILED' },
});
