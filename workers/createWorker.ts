import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import type { Config } from '../platform/config';
import type { Activities } from '../activities';
import { createExecutionActivities, type ExecutionActivities } from '../activities/execution/execution';
import { maxConcurrentExecutions } from '../platform/executionSettings';
import { activityDepsFrom, type ActivityDepsSources } from './activityDeps';
import { executionTaskQueue } from '../domain/shared/taskQueues';

interface SessionflowWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** A prebuilt bundle (production, tests); without it the worker bundles workflows/ at start. */
  workflowBundlePath?: string;
}

export const workflowsPath = require.resolve('../workflows');

/**
 * How long a workflow task waits on this worker's sticky queue (the worker that has the
 * workflow cached) before it goes to the shared queue. The SDK's 10 s is how long every
 * workflow cached on a worker that died stalls; a live worker takes its sticky tasks in
 * milliseconds, so 3 s costs nothing but an occasional replay elsewhere under a heavy burst.
 */
export const stickyQueueScheduleToStartTimeout = '3s';

/**
 * Production runs the bundle `npm run build` made; development uses it when present, or
 * bundles workflows/ at start (a few seconds).
 */
export function workflowBundleFrom(config: Pick<Config, 'NODE_ENV' | 'WORKFLOW_BUNDLE_PATH'>): string | undefined {
  if (existsSync(config.WORKFLOW_BUNDLE_PATH)) return config.WORKFLOW_BUNDLE_PATH;
  if (config.NODE_ENV === 'production') throw new Error(`NODE_ENV=production needs the prebuilt workflow bundle at ${config.WORKFLOW_BUNDLE_PATH} (npm run build)`);
  return undefined;
}

function workflowSource(bundlePath: string | undefined): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  return bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath };
}

export function createSessionflowWorker(options: SessionflowWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: options.activities,
    stickyQueueScheduleToStartTimeout,
    ...workflowSource(options.workflowBundlePath),
  });
}

interface ExecutionWorkerOptions extends Omit<SessionflowWorkerOptions, 'activities'> {
  activities: ExecutionActivities;
  /** Executions that may run at once (every runtime's container cap): each holds a workflow task slot while it runs. */
  maxConcurrentExecutions: number;
}

/**
 * A worker on the execution queue of `taskQueue`: execution workflows and their local
 * activities. The api runs one in-process (eager starts); the worker process runs one too.
 */
export function createExecutionWorker(options: ExecutionWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: executionTaskQueue(options.taskQueue),
    activities: options.activities,
    maxConcurrentWorkflowTaskExecutions: Math.max(40, options.maxConcurrentExecutions + 8),
    maxConcurrentLocalActivityExecutions: Math.max(100, options.maxConcurrentExecutions * 2 + 8),
    stickyQueueScheduleToStartTimeout,
    ...workflowSource(options.workflowBundlePath),
  });
}

/**
 * A process's own execution worker, from its config: a NativeConnection of its own (a client
 * on it starts executions eagerly) and the execution activities only.
 */
export async function connectExecutionWorker(config: Config, deps: ActivityDepsSources): Promise<{ connection: NativeConnection; worker: Worker }> {
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await createExecutionWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createExecutionActivities(activityDepsFrom(config, deps)),
    workflowBundlePath: workflowBundleFrom(config),
    maxConcurrentExecutions: maxConcurrentExecutions(config),
  });
  return { connection, worker };
}
