import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { activityDepsFrom, containerRuntimeAtStart } from './activityDeps';
import { createActivities } from '../activities';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';
import { createDocker } from '../platform/docker';
import { createLogger } from '../platform/logger';
import { connectTemporal } from '../platform/temporal';
import { createExecutionWorker, createSessionflowWorker, workflowBundleFrom } from './createWorker';
import { executionTaskQueue } from '../domain/shared/taskQueues';
import { maxConcurrentExecutions } from '../platform/executionSettings';
import { ensureComputeReconcileSchedule } from './computeSchedule';
import { ensureRetentionSchedule } from './retentionSchedule';
import { ensureSandboxSweepSchedule } from './sandboxSchedule';
import { TemporalPinoLogger } from './temporalLogger';
import { startComputeNode } from './computeNode';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL, 'worker');
  Runtime.install({
    logger: new TemporalPinoLogger(log),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });

  const pool = createPool(config.DATABASE_URL, config.DATABASE_POOL_SIZE, { connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS, statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS });
  const docker = createDocker(config.DOCKER_SOCKET);
  const containerRuntime = await containerRuntimeAtStart(config, docker, log);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });

  const workflowBundlePath = workflowBundleFrom(config);
  const prebuilt = workflowBundlePath !== undefined;
  const workerOptions = { connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.TEMPORAL_TASK_QUEUE, workflowBundlePath };
  const activities = createActivities(activityDepsFrom(config, { docker, pool, containerRuntime }));
  const worker = await createSessionflowWorker({ ...workerOptions, activities });
  // Executions whose api is gone finish here (the api's own execution worker starts them eagerly).
  const executionWorker = await createExecutionWorker({ ...workerOptions, activities, maxConcurrentExecutions: maxConcurrentExecutions(config) });
  // On one machine this process is also the compute node `local`, on the same engine.
  const computeNode = config.COMPUTE_NODE_ENABLED ? await startComputeNode({ config, connection, docker, pool, containerRuntime, log }) : undefined;
  log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, executionTaskQueue: executionTaskQueue(config.TEMPORAL_TASK_QUEUE), namespace: config.TEMPORAL_NAMESPACE, prebuilt }, 'worker polling');

  const client = await connectTemporal(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  const sweepSchedule = await ensureSandboxSweepSchedule(client, { instance: config.SESSIONFLOW_INSTANCE, taskQueue: config.TEMPORAL_TASK_QUEUE, intervalSeconds: config.SANDBOX_SWEEP_INTERVAL_SECONDS });
  const retentionSchedule = await ensureRetentionSchedule(client, config);
  const reconcileSchedule = await ensureComputeReconcileSchedule(client, config);
  await client.connection.close();
  log.info({ scheduleId: sweepSchedule, everySeconds: config.SANDBOX_SWEEP_INTERVAL_SECONDS }, 'sandbox sweep scheduled');
  log.info({ scheduleId: retentionSchedule, everySeconds: config.RETENTION_SWEEP_INTERVAL_SECONDS }, 'retention sweep scheduled');
  log.info({ scheduleId: reconcileSchedule, everySeconds: config.COMPUTE_RECONCILE_INTERVAL_SECONDS }, 'compute check-and-transit scheduled');

  // Worker.run resolves after SIGINT/SIGTERM once in-flight tasks have drained (Runtime's shutdown signals).
  await Promise.all([worker.run(), executionWorker.run(), computeNode?.run()]);
  await connection.close();
  await pool.end();
  log.info('worker stopped');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
