/**
 * The task queue the main worker polls. Compute-node workers poll `node/<name>` queues of their
 * own (nodeTaskQueue; see docs/architecture.md, Scaling out); tests use a unique queue each.
 */
export const defaultTaskQueue = 'sessionflow';

/**
 * Executions run on a queue of their own next to the main one: the api process polls it with
 * an in-process worker (so executions start eagerly, without a matching hop), and the worker
 * process polls it too (so an execution whose api died still finishes).
 */
export function executionTaskQueue(mainTaskQueue: string): string {
  return `${mainTaskQueue}/execution`;
}

/**
 * A compute node's own queue: only that node's worker polls it, with activities built on that
 * node's Docker engine, so an activity scheduled here acts on that node and no other.
 */
export function nodeTaskQueue(nodeName: string): string {
  return `node/${nodeName}`;
}
