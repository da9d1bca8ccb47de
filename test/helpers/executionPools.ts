import type { Client } from '@temporalio/client';
import { runtimes, makePoolWorkflowId } from '../../domain/execution';
import type { Infra } from './infra';

/** Ends the pool workflows of a test's task queue and removes every container they made. */
export async function removeExecutionPools(client: Client, infra: Infra, taskQueue: string): Promise<void> {
  for (const { language } of runtimes) {
    const poolId = makePoolWorkflowId(taskQueue, language);
    await client.workflow.getHandle(poolId).terminate('test finished').catch(() => undefined);
    await infra.activities.removeOrphanExecutionContainers({ pool: poolId, keep: [] });
  }
}
