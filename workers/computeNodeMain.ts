import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';
import { createDocker } from '../platform/docker';
import { createLogger } from '../platform/logger';
import { containerRuntimeAtStart } from './activityDeps';
import { startComputeNode } from './computeNode';
import { TemporalPinoLogger } from './temporalLogger';

/**
 * A compute node on its own (`npm run node-worker`): a second Docker engine, or another machine,
 * joins the cluster with its own DOCKER_SOCKET and COMPUTE_NODE_NAME (and the same database,
 * Temporal, registry and COMPUTE_SECRETS_KEY as the rest). It runs no workflows.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL, 'compute-node');
  Runtime.install({
    logger: new TemporalPinoLogger(log),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });
  const pool = createPool(config.DATABASE_URL, 4, { connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS, statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS });
  const docker = createDocker(config.DOCKER_SOCKET);
  const containerRuntime = await containerRuntimeAtStart(config, docker, log);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const node = await startComputeNode({ config, connection, docker, pool, containerRuntime, log });
  log.info({ node: node.name, taskQueue: node.taskQueue, docker: config.DOCKER_SOCKET }, 'compute node polling');
  // Resolves after SIGINT/SIGTERM once in-flight activities have drained.
  await node.run();
  await connection.close();
  await pool.end();
  log.info('compute node stopped');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
