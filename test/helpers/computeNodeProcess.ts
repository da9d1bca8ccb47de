import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { containerRuntimeResolver } from '../../activities/shared/containerRuntime';
import { loadConfig } from '../../platform/config';
import { createPool } from '../../platform/database';
import { createDocker } from '../../platform/docker';
import { createLogger } from '../../platform/logger';
import { startComputeNode } from '../../workers/computeNode';

/**
 * A compute node worker (COMPUTE_NODE_NAME, COMPUTE_NODE_SCALING_GROUP, the main engine) in a
 * process of its own, so a test can kill it with SIGKILL in the middle of an activity (spawned
 * by spawnWorkerProcess). Says `polling` once it polls.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const docker = createDocker(config.DOCKER_SOCKET);
  const node = await startComputeNode({
    config, connection, docker, pool: createPool(config.DATABASE_URL, 2), containerRuntime: containerRuntimeResolver(docker, config.CONTAINER_RUNTIME),
    log: createLogger('silent', 'node-process'), capacity: { cpuMillis: 8000, memoryBytes: 8 * 2 ** 30, gpu: 0 },
  });
  const running = node.run();
  process.stdout.write('polling\n');
  await running;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
