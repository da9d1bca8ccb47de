import { randomUUID } from 'node:crypto';
import { openRecorder, saveHistory } from './recorder';
import { createUserKey } from '../api/platform/auth';
import { createTemporalExecutor } from '../api/execution/executors';
import { makeExecutionWorkflowId, makePoolWorkflowId, poolStateQuery, type ExecutionJob } from '../domain/execution/execution';
import { poolSettingsFrom } from '../platform/executionSettings';
import { createExecutionWorker, createSessionflowWorker } from '../workers/createWorker';

/**
 * Re-records the code-execution replay histories from real runs: a stateless execution, a
 * session execution, one that passes over a dead container, a pool run that hands out
 * leases, takes them back and continues as new, and a pool at its cap that retires another
 * user's idle session for a waiting request (fair shares).
 */
async function main(): Promise<void> {
  const recorder = await openRecorder();
  const { config, pool, activities, connection, client } = recorder;
  const taskQueue = `record-execution-${randomUUID()}`;
  const { userId } = await createUserKey(pool, `recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');
  const executor = createTemporalExecutor({
    temporal: client, pool, taskQueue, historyOutputCap: 64, eagerStart: true,
    // Two leases per run, so the recorded pool history ends in continue-as-new.
    poolSettings: (runtime) => runtime === 'bash'
      // Two containers, no warm one, a long cooldown: two idle sessions hold the cap.
      ? { ...poolSettingsFrom(config, runtime), readySessions: 0, maxContainers: 2, cooldownMs: 600_000 }
      : { ...poolSettingsFrom(config, runtime), readySessions: 1, leasesPerRun: 2 },
  });
  const { userId: otherUserId } = await createUserKey(pool, `recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');
  const job = (code: string, sessionKey?: string): ExecutionJob => ({
    requestId: randomUUID(), language: 'python', version: '3.11.2', files: [{ name: 'main.py', content: Buffer.from(code).toString('base64') }],
    stdin: '', args: [], outputLimit: 65536, run: { command: ['python3', '-u', '{file}'], timeoutMs: 3000, memoryLimit: -1 }, sessionKey,
  });
  const workerOptions = { connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities, workflowBundlePath: recorder.workflowBundlePath };
  const worker = await createSessionflowWorker(workerOptions);
  const executionWorker = await createExecutionWorker({ ...workerOptions, maxConcurrentExecutions: 8 });
  const poolId = makePoolWorkflowId(taskQueue, 'python');
  const recorded: [string, string, string?][] = [];
  const executions = executionWorker.run();
  await worker.runUntil(async () => {
    const stateless = job('print("x" * 200)');
    await executor.execute(stateless, userId);
    const { runId: firstRunId } = await client.workflow.getHandle(poolId).describe();
    const session = job('open("f", "w").write("1"); print(open("f").read())', `${userId}/recorder`);
    await executor.execute(session, userId);
    await executor.execute(job('print(1)'), userId);
    // A ready container that died: the execution passes it over for another.
    const ready = (await client.workflow.getHandle(poolId).query(poolStateQuery)).containers.find((c) => c.state === 'ready');
    if (!ready) throw new Error('the pool has no ready container to kill');
    await recorder.docker.getContainer(ready.containerId).kill();
    const replaced = job('print(2)');
    await executor.execute(replaced, userId);
    const bashJob = (sessionKey?: string): ExecutionJob => ({ ...job('echo hi', sessionKey), language: 'bash', version: '5.2.15', files: [{ name: 'main.sh', content: Buffer.from('echo hi').toString('base64') }], run: { command: ['bash', '{file}'], timeoutMs: 3000, memoryLimit: -1 } });
    await executor.execute(bashJob(`${userId}/kept`), userId);
    await executor.execute(bashJob(`${otherUserId}/kept`), otherUserId);
    await executor.execute(bashJob(), userId);
    const fairPoolId = makePoolWorkflowId(taskQueue, 'bash');
    recorded.push(
      ['executionPool-fair-shares.json', fairPoolId],
      ['execution-stateless.json', makeExecutionWorkflowId(stateless.requestId)],
      ['execution-session.json', makeExecutionWorkflowId(session.requestId)],
      ['execution-dead-container-replaced.json', makeExecutionWorkflowId(replaced.requestId)],
      ['executionPool-continued-as-new.json', poolId, firstRunId],
    );
    for (const [file, workflowId, runId] of recorded) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      await saveHistory(history, file);
    }
    await client.workflow.getHandle(poolId).terminate('recorded');
    await client.workflow.getHandle(fairPoolId).terminate('recorded');
  });
  executionWorker.shutdown();
  await executions;
  await activities.removeOrphanExecutionContainers({ pool: poolId, keep: [] });
  await activities.removeOrphanExecutionContainers({ pool: makePoolWorkflowId(taskQueue, 'bash'), keep: [] });
  await recorder.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
