import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from '../../platform/config';
import { createPool } from '../../platform/database';
import { createDocker } from '../../platform/docker';
import { connectExecutionWorker } from '../../workers/createWorker';

/**
 * An execution worker in a process of its own, as the api runs one, so a test can kill it with
 * SIGKILL in the middle of an execution (spawned by spawnExecutionWorker, which sets
 * TEMPORAL_TASK_QUEUE and WORKFLOW_BUNDLE_PATH). Says `polling` on stdout once it polls.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const { worker } = await connectExecutionWorker(config, { docker: createDocker(config.DOCKER_SOCKET), pool: createPool(config.DATABASE_URL, 2) });
  process.stdout.write('polling\n');
  await worker.run();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
