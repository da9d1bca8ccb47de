import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { openRecorder, saveHistory } from './recorder';
import { createUserKey } from '../api/platform/auth';
import { startComputeSession } from '../api/compute/sessionActions';
import { computeStoreSettingsFrom, createComputeStore } from '../activities/compute/store';
import { containerRuntimeResolver } from '../activities/shared/containerRuntime';
import { checkAndTransitUpdate, computeStateQuery, destroyUpdate, modifyUpdate, restartUpdate, type ComputeSessionState } from '../domain/compute/compute';
import { computeReconcileKind } from '../domain/compute/kind';
import { createSessionBody } from '../domain/compute/params';
import { sessionStartOptions } from '../domain/shared/kind';
import { createLogger } from '../platform/logger';
import { createSessionflowWorker } from '../workers/createWorker';
import { startComputeNode } from '../workers/computeNode';

/**
 * Records the compute sessions' replay histories (test/replay/histories/computeSession-*.json,
 * computeReconcile.json) from real runs: real kernels on a real node (the main engine) pulled
 * from the loopback registry, PostgreSQL, Temporal. Run through scripts/record-histories.sh,
 * on purpose, when a change is meant to alter these histories.
 */
async function main(): Promise<void> {
  const recorder = await openRecorder(4);
  const { config, pool, activities, connection, client, docker } = recorder;
  const { userId: ownerId } = await createUserKey(pool, `history-recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');
  const store = createComputeStore(pool, computeStoreSettingsFrom(config));
  const group = `record-${randomUUID().slice(0, 8)}`;
  await store.createScalingGroup(group, 'history recorder');
  const taskQueue = `record-compute-${randomUUID()}`;
  const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities, workflowBundlePath: recorder.workflowBundlePath });
  const node = await startComputeNode({
    config, connection, docker, pool, containerRuntime: containerRuntimeResolver(docker, config.CONTAINER_RUNTIME), log: createLogger('silent', 'recorder'),
    name: `${group}-n`, scalingGroup: group, capacity: { cpuMillis: 8000, memoryBytes: 8 * 2 ** 30, gpu: 0 },
  });
  const timings = { agentTimeoutSeconds: 10, pendingRetrySeconds: 1 };

  const start = async (body: Record<string, unknown>) => {
    const input = await store.admitSession({ ownerId, params: createSessionBody.parse({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' }, ...body }) });
    return startComputeSession(client, { taskQueue, input, timings });
  };
  type Handle = Awaited<ReturnType<typeof start>>;
  const until = async (handle: Handle, done: (state: ComputeSessionState) => boolean) => {
    while (!done(await handle.query(computeStateQuery))) await sleep(100);
  };
  const save = async (handle: Handle, file: string) => saveHistory(await handle.fetchHistory(), file);

  await Promise.all([node.run(), worker.runUntil(async () => {
    // One kernel's whole life: created, renamed, restarted, checked, destroyed.
    const lifecycle = await start({ bootstrap_script: 'echo ready' });
    await until(lifecycle, (s) => s.status === 'RUNNING');
    await lifecycle.executeUpdate(modifyUpdate, { args: [{ name: `renamed-${group}`, priority: 3 }] });
    await lifecycle.executeUpdate(restartUpdate);
    await lifecycle.executeUpdate(checkAndTransitUpdate, { args: [{ reason: 'recorder' }] });
    await lifecycle.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
    await lifecycle.result();
    await save(lifecycle, 'computeSession-lifecycle.json');

    // A single-node cluster of two: key pair, private network, both kernels, then destroyed.
    const cluster = await start({ cluster_size: 2 });
    await until(cluster, (s) => s.status === 'RUNNING');
    await cluster.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
    await cluster.result();
    await save(cluster, 'computeSession-cluster.json');

    // A bootstrap script that fails: the kernel is removed and the session ends ERROR.
    const failing = await start({ bootstrap_script: 'exit 3' });
    await failing.result();
    await save(failing, 'computeSession-bootstrap-failed.json');

    // Destroyed while still waiting for its start time: CANCELLED.
    const waiting = await start({ starts_at: new Date(Date.now() + 3_600_000).toISOString() });
    await until(waiting, (s) => s.status === 'PENDING');
    await waiting.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
    await waiting.result();
    await save(waiting, 'computeSession-cancelled.json');

    // The scheduled check-and-transit, nudging a running session.
    const checked = await start({});
    await until(checked, (s) => s.status === 'RUNNING');
    const options = sessionStartOptions(computeReconcileKind, { key: [`record-${randomUUID()}`], taskQueue, status: 'RUNNING', summary: 'Compute check and transit (recorder)' });
    await client.workflow.execute(computeReconcileKind.workflowType, { ...options, args: [] });
    await saveHistory(await client.workflow.getHandle(options.workflowId).fetchHistory(), 'computeReconcile.json');
    await checked.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
    await checked.result();
    await node.shutdown();
  })]);
  await recorder.removeComputeRecording(ownerId, group);
  await recorder.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
