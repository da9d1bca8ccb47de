import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { openRecorder, saveHistory } from './recorder';
import { createUserKey } from '../api/platform/auth';
import { ensureSandbox } from '../api/sandbox/routes';
import { currentSandboxQuery, execInSandboxUpdate, makeSandboxWorkflowId, stopSandboxUpdate, type SandboxRecord } from '../domain/sandbox/sandbox';
import { createSessionflowWorker } from '../workers/createWorker';

/**
 * Records the chat-sandbox replay histories (test/replay/histories/sandbox*.json) from real
 * runs on real Docker, PostgreSQL and Temporal, with a TTL of a second and a half. Run through
 * scripts/record-histories.sh, on purpose, when a change is meant to alter these histories.
 */
const ttlMs = 1500;

async function main(): Promise<void> {
  const recorder = await openRecorder();
  const { config, pool, activities, connection, client } = recorder;
  const { userId: ownerId } = await createUserKey(pool, `history-recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');

  let refuseStops = false;
  let refuseCreates = false;
  const faulty: typeof activities = {
    ...activities,
    stopSandboxContainer: (input) => (refuseStops ? Promise.reject(Object.assign(new Error('stop_failed'), { name: 'RuntimeError' })) : activities.stopSandboxContainer(input)),
    createSandboxContainer: (input) => (refuseCreates ? Promise.reject(new Error('(injected) the engine could not start the container')) : activities.createSandboxContainer(input)),
  };
  const taskQueue = `record-sandbox-${randomUUID()}`;
  const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities: faulty, workflowBundlePath: recorder.workflowBundlePath });

  const save = async (file: string, workflowId: string) => {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    await saveHistory(history, file);
  };
  const untilStatus = async (chatId: string, status: SandboxRecord['status']) => {
    while ((await client.workflow.getHandle(makeSandboxWorkflowId(chatId)).query(currentSandboxQuery))?.status !== status) await sleep(100);
  };
  const sweep = () => client.workflow.execute('sandboxSweepWorkflow', { workflowId: `sandbox-sweep/record-${randomUUID()}`, taskQueue, args: [{ ownerId }] });

  await worker.runUntil(async () => {
    // Lifecycle: create, reuse, exec, expire by the TTL timer, replace, stop (the workflow ends).
    const lifecycle = randomUUID();
    const handle = client.workflow.getHandle(makeSandboxWorkflowId(lifecycle));
    await ensureSandbox(client, { taskQueue, chatId: lifecycle, ownerId, ttlMs });
    await ensureSandbox(client, { taskQueue, chatId: lifecycle, ownerId, ttlMs });
    await handle.executeUpdate(execInSandboxUpdate, { args: [{ ownerId, command: ['python3', '-c', 'print(42)'], timeoutMs: 5000 }] });
    await untilStatus(lifecycle, 'EXPIRED');
    await ensureSandbox(client, { taskQueue, chatId: lifecycle, ownerId, ttlMs: 60_000 });
    await handle.executeUpdate(stopSandboxUpdate, { args: [{ ownerId }] });
    await handle.result();
    await save('sandbox-lifecycle.json', handle.workflowId);

    // Cleanup: a stop that fails (sandbox_clean_failed), then the next sweep cleans it.
    const failing = randomUUID();
    await ensureSandbox(client, { taskQueue, chatId: failing, ownerId, ttlMs });
    await untilStatus(failing, 'EXPIRED');
    refuseStops = true;
    await sweep();
    while (!(await pool.query("SELECT 1 FROM sandbox_events WHERE chat_id = $1 AND event = 'sandbox_clean_failed'", [failing])).rowCount) await sleep(100);
    refuseStops = false;
    const sweepId = `sandbox-sweep/record-${randomUUID()}`;
    await client.workflow.execute('sandboxSweepWorkflow', { workflowId: sweepId, taskQueue, args: [{ ownerId }] });
    await client.workflow.getHandle(makeSandboxWorkflowId(failing)).result();
    await save('sandbox-clean-failed.json', makeSandboxWorkflowId(failing));
    await save('sandboxSweep.json', sweepId);

    // A killed container found by an exec (SandboxLost): the sandbox is retired and, with
    // nothing live, that run ends. A removed one found by an ensure, which replaces it.
    const dying = randomUUID();
    const dyingHandle = client.workflow.getHandle(makeSandboxWorkflowId(dying));
    const exec = () => dyingHandle.executeUpdate(execInSandboxUpdate, { args: [{ ownerId, command: ['python3', '-c', 'print(42)'], timeoutMs: 5000 }] });
    const killed = await ensureSandbox(client, { taskQueue, chatId: dying, ownerId, ttlMs: 60_000 });
    await recorder.docker.getContainer(killed.sandbox.containerId).kill();
    await exec().catch(() => undefined);
    await dyingHandle.result();
    await save('sandbox-lost-on-exec.json', dyingHandle.workflowId);
    const removed = await ensureSandbox(client, { taskQueue, chatId: dying, ownerId, ttlMs: 60_000 });
    await exec();
    await recorder.docker.getContainer(removed.sandbox.containerId).remove({ force: true });
    await ensureSandbox(client, { taskQueue, chatId: dying, ownerId, ttlMs: 60_000 });
    await dyingHandle.executeUpdate(stopSandboxUpdate, { args: [{ ownerId }] });
    await dyingHandle.result();
    await save('sandbox-lost-on-ensure.json', dyingHandle.workflowId);

    // A create that keeps failing: what it made is discarded, and the workflow ends with nothing left.
    const unlucky = randomUUID();
    refuseCreates = true;
    await ensureSandbox(client, { taskQueue, chatId: unlucky, ownerId, ttlMs: 60_000 }).catch(() => undefined);
    refuseCreates = false;
    await client.workflow.getHandle(makeSandboxWorkflowId(unlucky)).result();
    await save('sandbox-create-failed.json', makeSandboxWorkflowId(unlucky));
  });
  await recorder.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
