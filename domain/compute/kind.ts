import { defineSessionWorkflow } from '../shared/kind';
import type { Lifecycle } from '../shared/lifecycle';
import { SessionName } from '../shared/searchAttributes';
import type { ComputeStatus } from './status';

/**
 * A compute session's workflow, for its whole life: one per session id (`session/<id>`), since
 * every action on a session — restart, rename, destroy — is a message to the one workflow
 * that owns its kernels. Extra attribute: SessionName. A destroyed PENDING session is
 * CANCELLED, which ended as asked (ENDED); ERROR is the only failure.
 */
export const computeSessionKind = defineSessionWorkflow({
  kind: 'compute',
  workflowType: 'computeSessionWorkflow',
  workflowId: makeComputeSessionWorkflowId,
  lifecycle: {
    PENDING: 'PENDING',
    SCHEDULED: 'STARTING',
    PREPARING: 'STARTING',
    PULLING: 'STARTING',
    PREPARED: 'STARTING',
    CREATING: 'STARTING',
    RUNNING: 'RUNNING',
    RESTARTING: 'STARTING',
    TERMINATING: 'STOPPING',
    TERMINATED: 'ENDED',
    ERROR: 'FAILED',
    CANCELLED: 'ENDED',
  } satisfies Record<ComputeStatus, Lifecycle>,
  searchAttributes: [SessionName],
});

export function makeComputeSessionWorkflowId(sessionId: string): string {
  return `session/${sessionId}`;
}

/** One run of the scheduled check-and-transit (its id is the schedule's plus the run's time, made by Temporal). */
export const computeReconcileKind = defineSessionWorkflow({
  kind: 'compute-reconcile',
  workflowType: 'computeReconcileWorkflow',
  workflowId: (instance: string) => `${makeComputeReconcileScheduleId(instance)}/run`,
  lifecycle: { RUNNING: 'RUNNING', CHECKED: 'ENDED', FAILED: 'FAILED' },
});

/** One schedule per deployment: the instance keeps two deployments on one Temporal server apart. */
export function makeComputeReconcileScheduleId(instance: string): string {
  return `compute-reconcile/${instance}`;
}

/** One commit (or convert) of a session's main kernel: a child of the session's workflow (workflows/compute/imageCommit.ts). */
export const imageCommitKind = defineSessionWorkflow({
  kind: 'compute-commit',
  workflowType: 'imageCommitWorkflow',
  workflowId: makeImageCommitWorkflowId,
  lifecycle: { ongoing: 'RUNNING', finished: 'ENDED', failed: 'FAILED', cancelled: 'ENDED' },
});

export function makeImageCommitWorkflowId(sessionId: string, commitId: string): string {
  return `${makeComputeSessionWorkflowId(sessionId)}/commit/${commitId}`;
}
