import { Client, Connection } from '@temporalio/client';
import { removeInstanceLeftovers } from './helpers/computeNode';
import { runTaskQueuePrefix, testNamespace } from './helpers/testRun';

/**
 * Once the run is over: terminate what it left running in the tests' namespace (tests stop
 * their workers, not every workflow they started), and fail the run if any of its workflows
 * ran in the default namespace — the one the user watches in the Web UI. Only this run's task
 * queues are touched, so a run beside it on the same server keeps its workflows; what a run
 * killed before its teardown left behind is ended a day later by another run's. On the second
 * Docker engine (compute node b), this run's instance's containers, networks and volumes go.
 */
export default async function globalTeardown(): Promise<void> {
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  try {
    const ofThisRun = `TaskQueue STARTS_WITH '${runTaskQueuePrefix()}'`;
    const dayAgo = new Date(Date.now() - 24 * 3600_000).toISOString();
    await terminateRunning(new Client({ connection, namespace: testNamespace() }), `${ofThisRun} OR StartTime < '${dayAgo}'`);
    const leaked = await terminateRunning(new Client({ connection, namespace: 'default' }), ofThisRun);
    if (leaked.length > 0) throw new Error(`tests started workflows in the default namespace (now terminated): ${leaked.join(', ')}`);
  } finally {
    await connection.close();
    // Node b's engine serves only tests: what a killed test file left there goes with the run.
    await removeInstanceLeftovers().catch(() => undefined);
  }
}

/** Terminates the running workflows the query matches; returns their ids. */
async function terminateRunning(client: Client, query: string): Promise<string[]> {
  const running = [];
  for await (const execution of client.workflow.list({ query: `ExecutionStatus = 'Running' AND (${query})` })) running.push(execution);
  // One may end on its own between the list and the terminate: that is fine.
  await Promise.all(running.map(({ workflowId, runId }) => client.workflow.getHandle(workflowId, runId).terminate('left running by the test run').catch(() => undefined)));
  return running.map(({ workflowId }) => workflowId);
}
