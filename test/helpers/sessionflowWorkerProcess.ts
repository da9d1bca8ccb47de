import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { loadConfig } from '../../platform/config';
import { createPool } from '../../platform/database';
import { createDocker } from '../../platform/docker';
import { activityDepsFrom } from '../../workers/activityDeps';
import { createSessionflowWorker } from '../../workers/createWorker';

/**
 * The main worker (every workflow, the main queue's activities) in a process of its own, so a
 * test can kill it with SIGKILL in the middle of a workflow (spawned by spawnWorkerProcess,
 * which sets TEMPORAL_TASK_QUEUE and WORKFLOW_BUNDLE_PATH). Says `polling` once it polls.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const activities = createActivities(activityDepsFrom(config, { docker: createDocker(config.DOCKER_SOCKET), pool: createPool(config.DATABASE_URL, 2) }));
  const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.TEMPORAL_TASK_QUEUE, activities, workflowBundlePath: config.WORKFLOW_BUNDLE_PATH });
  process.stdout.write('polling\n');
  await worker.run();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
