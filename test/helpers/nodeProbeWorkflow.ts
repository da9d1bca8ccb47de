import { proxyActivities } from '@temporalio/workflow';
import type { ComputeNodeActivities, KernelSpec } from '../../activities/compute/node';

/**
 * A test-only workflow that schedules node activities on a node's queue, as the session
 * workflow will: which engine the kernel lands on is up to whichever worker polls that queue.
 */
export async function kernelOnNodeWorkflow(nodeTaskQueue: string, spec: KernelSpec): Promise<string> {
  const node = proxyActivities<ComputeNodeActivities>({ taskQueue: nodeTaskQueue, startToCloseTimeout: '2m', retry: { maximumAttempts: 3 } });
  await node.pullKernelImage({ reference: spec.imageReference });
  const { containerId } = await node.createKernel(spec);
  return containerId;
}
