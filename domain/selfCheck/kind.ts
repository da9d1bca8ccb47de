import { defineSessionWorkflow } from '../shared/kind';
import type { Lifecycle } from '../shared/lifecycle';
import { makeSelfCheckWorkflowId, type SelfCheckStatus } from './selfCheck';

/** The platform self-check: RUNNING until every probe reported, then PASSED or FAILED. */
export const selfCheckKind = defineSessionWorkflow({
  kind: 'self-check',
  workflowType: 'selfCheckWorkflow',
  workflowId: makeSelfCheckWorkflowId,
  lifecycle: { RUNNING: 'RUNNING', PASSED: 'ENDED', FAILED: 'FAILED' } satisfies Record<SelfCheckStatus, Lifecycle>,
});
