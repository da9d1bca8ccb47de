import { randomUUID } from 'node:crypto';
import { openRecorder, saveHistory } from './recorder';
import { domainFailure } from '../domain/shared/errors';
import { makeSelfCheckWorkflowId } from '../domain/selfCheck/selfCheck';
import { createSessionflowWorker } from '../workers/createWorker';

/**
 * Re-records the replay histories in test/replay/histories from real runs against real
 * infrastructure. Run it on purpose (scripts/record-histories.sh) when a workflow change is
 * meant to break replay — and say so in the commit.
 */
async function main(): Promise<void> {
  const recorder = await openRecorder();
  const { config, activities, connection, client } = recorder;

  const scenarios: { file: string; activities: typeof activities }[] = [
    { file: 'selfCheck-passed.json', activities },
    {
      file: 'selfCheck-registry-refused.json',
      activities: { ...activities, pushAndDeleteProbeImage: () => Promise.reject(domainFailure('RegistryPushError', 'denied: recorded fault')) },
    },
  ];
  for (const scenario of scenarios) {
    const taskQueue = `record-${randomUUID()}`;
    const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities: scenario.activities, workflowBundlePath: recorder.workflowBundlePath });
    const workflowId = makeSelfCheckWorkflowId(randomUUID());
    await worker.runUntil(async () => {
      const handle = await client.workflow.start('selfCheckWorkflow', { workflowId, taskQueue, args: [{ ownerId: 'recorder' }] });
      await handle.result();
    });
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    await saveHistory(history, scenario.file);
  }
  await recorder.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
