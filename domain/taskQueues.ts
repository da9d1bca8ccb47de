/**
 * The task queue the main worker polls. Compute-node workers will poll `node/<name>` queues
 * of their own (see README, Scaling out); tests use a unique queue each.
 */
export const defaultTaskQueue = 'sessionflow';
