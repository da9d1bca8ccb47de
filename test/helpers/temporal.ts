import { DefaultLogger, makeTelemetryFilterString, Runtime, Worker } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { createExecutionWorker, createSessionflowWorker } from '../../workers/createWorker';
import type { createActivities } from '../../activities';
import { runTaskQueuePrefix, testNamespace } from './testRun';

let runtimeInstalled = false;
function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } } });
  } catch {
    // Another test file in this jest worker installed it already.
  }
}

/** The run's one dev server (started by globalSetup) in the tests' namespace, as a test environment. */
export async function connectTestEnv(): Promise<TestWorkflowEnvironment> {
  installQuietRuntime();
  return TestWorkflowEnvironment.createFromExistingServer({
    address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: testNamespace(),
  });
}

export function uniqueTaskQueue(name: string): string {
  return `${runTaskQueuePrefix()}${name}-${randomUUID()}`;
}

export function workflowBundlePath(): string {
  const path = process.env.SF_TEST_WORKFLOW_BUNDLE;
  if (!path) throw new Error('SF_TEST_WORKFLOW_BUNDLE is unset: run jest through its globalSetup');
  return path;
}

export function createTestWorker(env: TestWorkflowEnvironment, taskQueue: string, activities: ReturnType<typeof createActivities>): Promise<Worker> {
  return createSessionflowWorker({ connection: env.nativeConnection, namespace: env.namespace ?? testNamespace(), taskQueue, activities, workflowBundlePath: workflowBundlePath() });
}

/** The execution queue's worker of a test's task queue (the api process and the worker process each run one). */
export function createTestExecutionWorker(env: TestWorkflowEnvironment, taskQueue: string, activities: ReturnType<typeof createActivities>): Promise<Worker> {
  return createExecutionWorker({ connection: env.nativeConnection, namespace: env.namespace ?? testNamespace(), taskQueue, activities, workflowBundlePath: workflowBundlePath(), maxConcurrentExecutions: 64 });
}
