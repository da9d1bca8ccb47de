import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { openRecorder, saveHistory } from './recorder';
import { createUserKey } from '../api/platform/auth';
import { startComputeSession } from '../api/compute/sessionActions';
import { createCommitStore } from '../activities/compute/commitStore';
import { computeStoreSettingsFrom, createComputeStore } from '../activities/compute/store';
import { containerRuntimeResolver } from '../activities/shared/containerRuntime';
import { deleteManifest, manifestDigest } from '../activities/shared/registry';
import { computeStateQuery, destroyUpdate } from '../domain/compute/compute';
import { convertTarget, imageCommitProgressQuery, startImageCommitUpdate } from '../domain/compute/imageCommit';
import { createSessionBody } from '../domain/compute/params';
import type { imageCommitWorkflow } from '../workflows/compute/imageCommit';
import { createLogger } from '../platform/logger';
import { createSessionflowWorker } from '../workers/createWorker';
import { startComputeNode } from '../workers/computeNode';

/**
 * Records the replay histories of a full convert (test/replay/histories/imageCommit-convert.json
 * and the session's computeSession-convert.json) from a real run: a real kernel on a real node
 * (the main engine), a push to the loopback registry, PostgreSQL, Temporal. Kept apart from
 * record-compute-histories.ts so that adding these did not re-record those.
 */
async function main(): Promise<void> {
  const recorder = await openRecorder(4);
  const { config, pool, activities, connection, client, docker } = recorder;
  const { userId: ownerId } = await createUserKey(pool, `history-recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');
  const store = createComputeStore(pool, computeStoreSettingsFrom(config));
  const commits = createCommitStore(pool);
  const group = `record-${randomUUID().slice(0, 8)}`;
  await store.createScalingGroup(group, 'history recorder');
  const taskQueue = `record-commit-${randomUUID()}`;
  const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities, workflowBundlePath: recorder.workflowBundlePath });
  const node = await startComputeNode({
    config, connection, docker, pool, containerRuntime: containerRuntimeResolver(docker, config.CONTAINER_RUNTIME), log: createLogger('silent', 'recorder'),
    name: `${group}-n`, scalingGroup: group, capacity: { cpuMillis: 8000, memoryBytes: 8 * 2 ** 30, gpu: 0 },
  });
  const imageName = `recorded-${group}:v1`;
  const target = convertTarget(config.REGISTRY_ADDRESS, ownerId, imageName);

  await Promise.all([node.run(), worker.runUntil(async () => {
    const input = await store.admitSession({ ownerId, params: createSessionBody.parse({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' } }) });
    const session = await startComputeSession(client, { taskQueue, input, timings: { agentTimeoutSeconds: 10, pendingRetrySeconds: 1 } });
    while ((await session.query(computeStateQuery)).status !== 'RUNNING') await sleep(100);

    // Converted to the local registry: commit, tag, push with progress, register, clean up.
    const commitId = randomUUID();
    await commits.begin({ commitId, sessionId: input.sessionId, ownerId, kind: 'convert', imageName, registry: 'local', defaultMaxCustomizedImages: 10 });
    const { workflowId } = await session.executeUpdate(startImageCommitUpdate, { args: [{ commitId, kind: 'convert', imageName, registry: { name: 'local', address: config.REGISTRY_ADDRESS } }] });
    const commit = client.workflow.getHandle<typeof imageCommitWorkflow>(workflowId);
    const result = await commit.result();
    if (result.status !== 'finished') throw new Error(`the convert ended ${result.status}: ${result.error?.message}`);
    await commit.query(imageCommitProgressQuery);
    await saveHistory(await commit.fetchHistory(), 'imageCommit-convert.json');

    await session.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
    await session.result();
    await saveHistory(await session.fetchHistory(), 'computeSession-convert.json');
    await node.shutdown();
  })]);
  const repository = target.repo.slice(config.REGISTRY_ADDRESS.length + 1);
  const digest = await manifestDigest(config.REGISTRY_ADDRESS, repository, target.tag);
  if (digest) await deleteManifest(config.REGISTRY_ADDRESS, repository, digest);
  await recorder.removeComputeRecording(ownerId, group);
  await recorder.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
