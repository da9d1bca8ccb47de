import { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { activityDepsFrom } from '../workers/activityDeps';
import { createActivities } from '../activities';
import { createUserKey } from '../api/auth';
import { ensureSandbox } from '../api/routes/sandbox';
import { currentSandboxQuery, execInSandboxUpdate, makeSandboxWorkflowId, stopSandboxUpdate, type SandboxRecord } from '../domain/sandbox';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';
import { createDocker } from '../platform/docker';
import { createSessionflowWorker } from '../workers/createWorker';

/**
 * Records the chat-sandbox replay histories (test/replay/histories/sandbox*.json) from real
 * runs on real Docker, PostgreSQL and Temporal, with a TTL of a second and a half. Run through
 * scripts/record-histories.sh, on purpose, when a change is meant to alter these histories.
 */
const historiesDir = resolve(__dirname, '../../test/replay/histories');
const ttlMs = 1500;

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, 2);
  const activities = createActivities(activityDepsFrom(config, { docker: createDocker(config.DOCKER_SOCKET), pool }));
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const { userId: ownerId } = await createUserKey(pool, `history-recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');

  let refuseStops = false;
  const faulty: typeof activities = {
    ...activities,
    stopSandboxContainer: (input) => (refuseStops ? Promise.reject(Object.assign(new Error('stop_failed'), { name: 'RuntimeError' })) : activities.stopSandboxContainer(input)),
  };
  const taskQueue = `record-sandbox-${randomUUID()}`;
  const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities: faulty, workflowBundlePath: resolve(__dirname, '../workflow-bundle.js') });

  const save = async (file: string, workflowId: string) => {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    await writeFile(join(historiesDir, file), `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`);
    console.log(`recorded ${file} (${history.events?.length} events)`);
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
  });
  await connection.close();
  await pool.end();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
