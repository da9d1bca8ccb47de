import { defineSessionWorkflow } from '../shared/kind';
import { MachineMac } from '../shared/searchAttributes';
import type { Lifecycle } from '../shared/lifecycle';
import { makePxeImageWorkflowId, makePxeWorkflowId, type PxeImageStatus, type PxeSessionStatus } from './pxe';

/** A diskless-boot session's saga (seed 004's statuses). Extra attribute: MachineMac. */
export const pxeSessionKind = defineSessionWorkflow({
  kind: 'pxe',
  workflowType: 'pxeSessionWorkflow',
  workflowId: makePxeWorkflowId,
  lifecycle: { STARTING: 'STARTING', ACTIVE: 'RUNNING', STOPPING: 'STOPPING', STOPPED: 'ENDED', FAILED: 'FAILED' } satisfies Record<PxeSessionStatus, Lifecycle>,
  searchAttributes: [MachineMac],
});

/** Preparing an image (check, convert to raw): its row is PENDING, CONVERTING meanwhile, then READY or ERROR. */
export const pxeImageKind = defineSessionWorkflow({
  kind: 'pxe-image',
  workflowType: 'pxeImageWorkflow',
  workflowId: makePxeImageWorkflowId,
  lifecycle: { PENDING: 'PENDING', CONVERTING: 'RUNNING', READY: 'ENDED', ERROR: 'FAILED' } satisfies Record<PxeImageStatus, Lifecycle>,
});

/** A probe of one boot server's DHCP and TFTP adapters, over SSH. */
export const pxeBootServerStatusKind = defineSessionWorkflow({
  kind: 'pxe-boot-server-status',
  workflowType: 'pxeBootServerStatusWorkflow',
  workflowId: (bootServerId: string, requestId: string) => `pxe-boot-server-status/${bootServerId}/${requestId}`,
  lifecycle: { RUNNING: 'RUNNING', PROBED: 'ENDED', UNREACHABLE: 'FAILED' },
});
