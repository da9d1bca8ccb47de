import { defineSessionWorkflow } from '../shared/kind';
import { Runtime } from '../shared/searchAttributes';
import type { Lifecycle } from '../shared/lifecycle';
import { makeExecutionWorkflowId, makePoolWorkflowId, type ExecutionStatus } from './execution';

/**
 * One code execution. A result is ENDED whatever the program did (OK, or Piston's RE, SG, TO,
 * OL, EL, or a failed compile CE): its outcome is the user's. XX — the run could not be carried
 * out (the container vanished, Docker failed) — is the platform's FAILED.
 * Extra attribute: Runtime (the language).
 */
export const executionKind = defineSessionWorkflow({
  kind: 'execution',
  workflowType: 'codeExecutionWorkflow',
  workflowId: makeExecutionWorkflowId,
  lifecycle: {
    RUNNING: 'RUNNING',
    OK: 'ENDED', CE: 'ENDED', RE: 'ENDED', SG: 'ENDED', TO: 'ENDED', OL: 'ENDED', EL: 'ENDED',
    XX: 'FAILED',
  } satisfies Record<'RUNNING' | ExecutionStatus, Lifecycle>,
  searchAttributes: [Runtime],
});

/** A runtime's pool of warm containers: RUNNING for its whole life (it continues as new). Extra attribute: Runtime. */
export const executionPoolKind = defineSessionWorkflow({
  kind: 'execution-pool',
  workflowType: 'executionPoolWorkflow',
  workflowId: makePoolWorkflowId,
  lifecycle: { RUNNING: 'RUNNING' },
  searchAttributes: [Runtime],
});
