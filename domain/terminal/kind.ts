import { defineSessionWorkflow } from '../shared/kind';
import type { Lifecycle } from '../shared/lifecycle';
import { makeTerminalWorkflowId, type TerminalStatus } from './terminal';

/** A terminal session (the seed's statuses): active until closed by its user or expired (ttl, idle). */
export const terminalKind = defineSessionWorkflow({
  kind: 'terminal',
  workflowType: 'terminalSessionWorkflow',
  workflowId: makeTerminalWorkflowId,
  lifecycle: { active: 'RUNNING', closed: 'ENDED', expired: 'ENDED' } satisfies Record<TerminalStatus, Lifecycle>,
});
