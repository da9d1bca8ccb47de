import { Client } from '@temporalio/client';
import { Runtime, makeTelemetryFilterString, type Worker } from '@temporalio/worker';
import { once } from 'node:events';
import { loadConfig, type Config } from '../platform/config';
import { createPool } from '../platform/database';
import { createDocker } from '../platform/docker';
import { createLogger } from '../platform/logger';
import { connectTemporal } from '../platform/temporal';
import { containerRuntimeAtStart } from '../workers/activityDeps';
import { connectExecutionWorker } from '../workers/createWorker';
import { TemporalPinoLogger } from '../workers/temporalLogger';
import { computeStoreSettingsFrom, createComputeStore } from '../activities/compute/store';
import { seedBuiltInImages } from './compute/admin';
import { seedDefaultRegistry } from './compute/registries';
import { createApp } from './platform/app';
import { attachTerminalBridge, type TerminalBridge } from './terminal/bridge';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL, 'api');
  const pool = createPool(config.DATABASE_URL, config.DATABASE_POOL_SIZE, { connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS, statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS });
  const docker = createDocker(config.DOCKER_SOCKET);
  const temporal = await connectTemporal(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  const execution = config.EXECUTION_WORKER_IN_API && !config.USE_LOCAL_EXECUTOR ? await startExecutionWorker(config, log, { docker, pool }) : undefined;
  const app = createApp({ config, temporal, executionClient: execution?.client, pool, docker, log });
  // A fresh system can start a python:3.11 session with no admin step.
  await seedBuiltInImages(createComputeStore(pool, computeStoreSettingsFrom(config)), config);
  await seedDefaultRegistry(pool, config);

  const server = app.listen(config.PORT, config.HOST);
  await once(server, 'listening');
  const terminalBridge = app.locals.terminalBridge as TerminalBridge;
  attachTerminalBridge(server, terminalBridge);
  log.info({ url: `http://${config.HOST}:${config.PORT}`, executionWorker: Boolean(execution) }, 'api listening');

  const shutdown = (signal: string) => {
    log.info({ signal }, 'api stopping');
    void terminalBridge.close();
    // Requests in flight (executions among them) finish first; then the execution worker drains.
    server.close(() => {
      execution?.worker.shutdown();
      void Promise.allSettled([execution?.running, pool.end(), temporal.connection.close()]).then(() => process.exit(0));
    });
    // Keep-alive sockets would hold close() open; drop them after a grace period.
    setTimeout(() => server.closeAllConnections(), 5000).unref();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

/**
 * The api's own execution worker: executions started through its connection begin on this
 * process at once (eager start), and their runs and releases are local activities here.
 */
async function startExecutionWorker(config: Config, log: ReturnType<typeof createLogger>, deps: Parameters<typeof connectExecutionWorker>[1]): Promise<{ client: Client; worker: Worker; running: Promise<void> }> {
  // It creates execution containers: an explicit CONTAINER_RUNTIME=runsc the engine lacks stops the api here.
  const containerRuntime = await containerRuntimeAtStart(config, deps.docker, log);
  // The api's handlers stop it; the SDK's own signal handling would drain it before them.
  Runtime.install({ logger: new TemporalPinoLogger(log), shutdownSignals: [], telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } } });
  const { connection, worker } = await connectExecutionWorker(config, { ...deps, containerRuntime });
  const running = worker.run().finally(() => connection.close());
  return { client: new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }), worker, running };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
