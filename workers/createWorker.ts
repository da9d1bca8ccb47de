import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { createActivities } from '../activities';

export interface SessionflowWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: ReturnType<typeof createActivities>;
  /** A prebuilt bundle (production, tests); without it the worker bundles workflows/ at start. */
  workflowBundlePath?: string;
}

export const workflowsPath = require.resolve('../workflows');

export function createSessionflowWorker(options: SessionflowWorkerOptions): Promise<Worker> {
  const workflowSource: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> = options.workflowBundlePath
    ? { workflowBundle: { codePath: options.workflowBundlePath } }
    : { workflowsPath };
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: options.activities,
    ...workflowSource,
  });
}
