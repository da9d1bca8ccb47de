import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createExecutionActivities } from '../../activities/execution';
import { loadConfig } from '../../platform/config';
import { createPool } from '../../platform/database';
import { createDocker } from '../../platform/docker';
import { activityDepsFrom } from '../../workers/activityDeps';
import { createExecutionWorker } from '../../workers/createWorker';

/**
 * An execution worker in a process of its own, so a test can kill it with SIGKILL in the
 * middle of an execution (spawned by spawnExecutionWorker). Polls the execution queue of
 * SF_TEST_TASK_QUEUE and says `polling` on stdout once it does.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, 2);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await createExecutionWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: process.env.SF_TEST_TASK_QUEUE!,
    activities: createExecutionActivities(activityDepsFrom(config, { docker: createDocker(config.DOCKER_SOCKET), pool })),
    workflowBundlePath: process.env.SF_TEST_WORKFLOW_BUNDLE,
    maxConcurrentExecutions: 8,
  });
  process.stdout.write('polling\n');
  await worker.run();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
