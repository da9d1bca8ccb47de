import { defineSessionWorkflow } from '../shared/kind';
import { ChatId } from '../shared/searchAttributes';
import type { Lifecycle } from '../shared/lifecycle';
import { makeSandboxSweepScheduleId, makeSandboxWorkflowId, type SandboxStatus } from './sandbox';

/**
 * A chat's sandbox workflow; its status is that of the chat's current sandbox. EXPIRED is a
 * sandbox past its TTL whose container is not stopped yet. Extra attribute: ChatId.
 */
export const sandboxKind = defineSessionWorkflow({
  kind: 'sandbox',
  workflowType: 'sandboxWorkflow',
  workflowId: makeSandboxWorkflowId,
  lifecycle: { CREATING: 'STARTING', RUNNING: 'RUNNING', EXPIRED: 'STOPPING', STOPPED: 'ENDED' } satisfies Record<SandboxStatus, Lifecycle>,
  searchAttributes: [ChatId],
});

/** One run of the scheduled cleanup (its id is the schedule's plus the run's time, made by Temporal). */
export const sandboxSweepKind = defineSessionWorkflow({
  kind: 'sandbox-sweep',
  workflowType: 'sandboxSweepWorkflow',
  workflowId: (instance: string) => `${makeSandboxSweepScheduleId(instance)}/run`,
  lifecycle: { RUNNING: 'RUNNING', SWEPT: 'ENDED', FAILED: 'FAILED' },
});
