import { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { activityDepsFrom } from '../workers/activityDeps';
import { createActivities } from '../activities';
import { domainFailure } from '../domain/errors';
import { makeSelfCheckWorkflowId } from '../domain/selfCheck';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';
import { createDocker } from '../platform/docker';
import { createSessionflowWorker } from '../workers/createWorker';

/**
 * Re-records the replay histories in test/replay/histories from real runs against real
 * infrastructure. Run it on purpose (scripts/record-histories.sh) when a workflow change is
 * meant to break replay — and say so in the commit.
 */
const historiesDir = resolve(__dirname, '../../test/replay/histories');

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, 2);
  const activities = createActivities(activityDepsFrom(config, { docker: createDocker(config.DOCKER_SOCKET), pool }));
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });

  const scenarios: { file: string; activities: typeof activities }[] = [
    { file: 'selfCheck-passed.json', activities },
    {
      file: 'selfCheck-registry-refused.json',
      activities: { ...activities, pushAndDeleteProbeImage: () => Promise.reject(domainFailure('RegistryPushError', 'denied: recorded fault')) },
    },
  ];
  for (const scenario of scenarios) {
    const taskQueue = `record-${randomUUID()}`;
    const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities: scenario.activities, workflowBundlePath: resolve(__dirname, '../workflow-bundle.js') });
    const workflowId = makeSelfCheckWorkflowId(randomUUID());
    await worker.runUntil(async () => {
      const handle = await client.workflow.start('selfCheckWorkflow', { workflowId, taskQueue, args: [{ ownerId: 'recorder' }] });
      await handle.result();
    });
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    await writeFile(join(historiesDir, scenario.file), `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`);
    console.log(`recorded ${scenario.file} (${history.events?.length} events)`);
  }
  await connection.close();
  await pool.end();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
