import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { Express } from 'express';
import { computeStoreSettingsFrom, createComputeStore } from '../../activities/compute/store';
import { seedBuiltInImages } from '../../api/compute/admin';
import { seedDefaultRegistry } from '../../api/compute/registries';
import { createApp } from '../../api/platform/app';
import { createUserKey } from '../../api/platform/auth';
import { attachTerminalBridge, type TerminalBridge } from '../../api/terminal/bridge';
import { createLogger } from '../../platform/logger';
import type { Infra } from './infra';
import { createTestExecutionWorker, createTestWorker, uniqueTaskQueue } from './temporal';
import { testNamespace } from './testRun';

export interface HarnessOptions {
  /** Start executions eagerly (a client sharing the execution worker's NativeConnection), as the api process does. */
  eagerStart?: boolean;
  /** `false`: no execution worker in this process (a test brings its own). */
  executionWorker?: boolean;
}

export interface ApiHarness {
  app: Express;
  worker: Worker;
  taskQueue: string;
  adminKey: string;
  userKey: string;
  userId: string;
  stop(): Promise<void>;
}

/** The real api wired to the real infrastructure, with a worker on a queue of its own. */
export async function startApiHarness(env: TestWorkflowEnvironment, infra: Infra, overrides: Partial<Infra['config']> = {}, options: HarnessOptions = {}): Promise<ApiHarness> {
  const taskQueue = uniqueTaskQueue('api');
  const namespace = env.namespace ?? testNamespace();
  const config = { ...infra.config, TEMPORAL_TASK_QUEUE: taskQueue, TEMPORAL_NAMESPACE: namespace, ...overrides };
  // Eager workflow start needs the client on the NativeConnection the execution worker polls with.
  const executionClient = options.eagerStart ? new Client({ connection: env.nativeConnection, namespace }) : undefined;
  const app = createApp({ config, temporal: env.client, executionClient, pool: infra.pool, docker: infra.docker, log: createLogger('silent', 'api-test') });
  // As api/main.ts does at start.
  await seedBuiltInImages(createComputeStore(infra.pool, computeStoreSettingsFrom(config)), config);
  await seedDefaultRegistry(infra.pool, config);
  const worker = await createTestWorker(env, taskQueue, infra.activities);
  const executionWorker = options.executionWorker === false ? undefined : await createTestExecutionWorker(env, taskQueue, infra.activities);
  const running = Promise.all([worker.run(), executionWorker?.run()]);
  const suffix = randomUUID().slice(0, 8);
  const { key: adminKey } = await createUserKey(infra.pool, `admin-${suffix}`, 'admin', 'test');
  const { key: userKey, userId } = await createUserKey(infra.pool, `user-${suffix}`, 'user', 'test');
  return {
    app, worker, taskQueue, adminKey, userKey, userId,
    async stop() {
      worker.shutdown();
      executionWorker?.shutdown();
      await running;
    },
  };
}

export async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The app on a loopback port with the terminal WebSocket bridge attached, as api/main.ts does. */
export async function listenWithBridge(app: Express): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const bridge = app.locals.terminalBridge as TerminalBridge;
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  attachTerminalBridge(server, bridge);
  const { port } = server.address() as { port: number };
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    async close() {
      await bridge.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
