import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import type Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { pack } from 'tar-stream';
import { createUserKey } from '../../../api/platform/auth';
import { createClusterKeyActivities } from '../../../activities/compute/clusterKeys';
import { bootstrapStatusPath } from '../../../activities/compute/kernelInit';
import { createComputeNodeActivities, kernelContainerName, type KernelSpec } from '../../../activities/compute/node';
import { vfolderVolumeName } from '../../../domain/compute/vfolders';
import { computeSecretsSealer } from '../../../activities/compute/secretStore';
import { containerRuntimeResolver } from '../../../activities/shared/containerRuntime';
import { ignoreNotFound } from '../../../activities/shared/docker';
import { deleteManifest, followProgress, manifestDigest } from '../../../activities/shared/registry';
import { containerLog, eventually, execAsWork, nodeBDocker, removeComputeLeftovers } from '../../helpers/computeNode';
import { fileToolsOutput, fileToolsScript } from '../../helpers/fileTools';
import { openInfra, type Infra } from '../../helpers/infra';

/**
 * The node activities against node b's own engine (a second dockerd, scripts/ensure-node-engine.sh):
 * real pulls from the loopback registry, real kernels under the engine's runtime (gVisor).
 */
let infra: Infra;
let nodeB: Docker;
let activities: ReturnType<typeof createComputeNodeActivities>;
let clusterKeys: ReturnType<typeof createClusterKeyActivities>;
let ownerId: string;
const logs: LogEntry[] = [];
const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('TRACE', (entry) => logs.push(entry)) });
const sessions: string[] = [];
const volumes: string[] = [];

beforeAll(async () => {
  infra = openInfra();
  nodeB = nodeBDocker();
  const sealer = computeSecretsSealer(infra.config.COMPUTE_SECRETS_KEY);
  activities = createComputeNodeActivities({
    docker: nodeB, pool: infra.pool, instance: infra.config.SESSIONFLOW_INSTANCE, sealer,
    containerRuntime: containerRuntimeResolver(nodeB, infra.config.CONTAINER_RUNTIME), registryAddress: infra.config.REGISTRY_ADDRESS,
  });
  clusterKeys = createClusterKeyActivities({ pool: infra.pool, sealer });
  ({ userId: ownerId } = await createUserKey(infra.pool, `node-${randomUUID().slice(0, 8)}`, 'user', 'test'));
  await env.run(activities.pullKernelImage, { reference: infra.config.COMPUTE_KERNEL_IMAGE });
}, 120_000);
afterAll(async () => {
  await removeComputeLeftovers(nodeB, infra.config.SESSIONFLOW_INSTANCE, sessions, volumes);
  await infra.pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
  await infra.close();
});

/** Runs an activity as a worker would: in an activity context whose log lines the tests read. */
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

function kernel(overrides: Partial<KernelSpec> = {}): KernelSpec {
  const sessionId = overrides.sessionId ?? randomUUID();
  sessions.push(sessionId);
  return {
    sessionId, ownerId, kernelId: randomUUID(), hostname: 'main1', role: 'main', idx: 1,
    imageReference: infra.config.COMPUTE_KERNEL_IMAGE,
    resources: { cpuMillis: 500, memoryBytes: 256 * 1024 * 1024, gpu: 0 },
    env: {}, vfolders: [], clusterHosts: ['main1'],
    ...overrides,
  };
}

const bootstrapped = (containerId: string) => eventually(async () => {
  const state = await run(activities.kernelBootstrapState, { containerId });
  return state.done ? state : undefined;
});

async function expectFailure(promise: Promise<unknown>, type: string): Promise<void> {
  const err: unknown = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type, nonRetryable: true });
}

describe('pullKernelImage', () => {
  const repository = 'sessionflow/node-pull-test';

  /** Pushes a one-file image (its digest is no other tag's) from the main engine as repository:tag. */
  async function pushMarkerImage(tag: string, marker: string): Promise<string> {
    const reference = `${infra.config.REGISTRY_ADDRESS}/${repository}:${tag}`;
    const tar = pack();
    tar.entry({ name: 'marker.txt' }, marker);
    tar.finalize();
    await followProgress(infra.docker, await infra.docker.importImage(tar as unknown as NodeJS.ReadableStream, { repo: `${infra.config.REGISTRY_ADDRESS}/${repository}`, tag }));
    await followProgress(infra.docker, await infra.docker.getImage(reference).push({ tag }));
    return reference;
  }

  async function removeEverywhere(tag: string): Promise<void> {
    const reference = `${infra.config.REGISTRY_ADDRESS}/${repository}:${tag}`;
    const digest = await manifestDigest(infra.config.REGISTRY_ADDRESS, repository, tag);
    if (digest) await deleteManifest(infra.config.REGISTRY_ADDRESS, repository, digest);
    await ignoreNotFound(infra.docker.getImage(reference).remove({ force: true }));
    await ignoreNotFound(nodeB.getImage(reference).remove({ force: true }));
  }

  it('pulls an image the node lacks from the registry, and reports no pull once the node has it', async () => {
    const tag = `node-test-${randomUUID().slice(0, 8)}`;
    try {
      const reference = await pushMarkerImage(tag, tag);
      expect(await run(activities.pullKernelImage, { reference })).toEqual({ pulled: true });
      expect(await nodeB.getImage(reference).inspect()).toMatchObject({ RepoTags: [reference] });
      expect(await run(activities.pullKernelImage, { reference })).toEqual({ pulled: false });
    } finally {
      await removeEverywhere(tag);
    }
  });

  it('pulls a tag again once the registry holds another image under it (a rebuilt kernel image pushed again)', async () => {
    const tag = `node-test-${randomUUID().slice(0, 8)}`;
    let first: string | undefined;
    try {
      const reference = await pushMarkerImage(tag, 'first build');
      first = (await infra.docker.getImage(reference).inspect()).Id;
      expect(await run(activities.pullKernelImage, { reference })).toEqual({ pulled: true });
      await pushMarkerImage(tag, 'second build');
      const rebuilt = (await infra.docker.getImage(reference).inspect()).Id;

      expect(await run(activities.pullKernelImage, { reference })).toEqual({ pulled: true });
      expect((await nodeB.getImage(reference).inspect()).Id).toBe(rebuilt);
      expect(await run(activities.pullKernelImage, { reference })).toEqual({ pulled: false });
    } finally {
      await removeEverywhere(tag);
      // The first build, untagged by the second on both engines.
      if (first) await Promise.all([infra.docker, nodeB].map((engine) => ignoreNotFound(engine.getImage(first!).remove({ force: true }))));
    }
  });

  it('fails with ImageNotFound for a reference the registry does not have, or one from another registry', async () => {
    await expectFailure(run(activities.pullKernelImage, { reference: `${infra.config.REGISTRY_ADDRESS}/sessionflow/no-such-kernel:${randomUUID().slice(0, 8)}` }), 'ImageNotFound');
    await expectFailure(run(activities.pullKernelImage, { reference: 'docker.io/library/no-such-image-anywhere:1' }), 'ImageNotFound');
  });
});

describe('createKernel', () => {
  it('makes one container however often it is retried, with the secret in its environment and nowhere in its labels or the logs', async () => {
    const secret = `s3cr3t-${randomUUID()}`;
    const secretId = randomUUID();
    const sealer = computeSecretsSealer(infra.config.COMPUTE_SECRETS_KEY);
    await infra.pool.query('INSERT INTO compute_secrets (id, owner_id, sealed) VALUES ($1, $2, $3)', [secretId, ownerId, sealer.seal(JSON.stringify({ API_TOKEN: secret }), secretId)]);
    const spec = kernel({ secretId, env: { PLAIN: 'visible' } });
    logs.length = 0;

    const first = await run(activities.createKernel, spec);
    const second = await run(activities.createKernel, spec);

    expect(second.containerId).toBe(first.containerId);
    const named = await nodeB.listContainers({ all: true, filters: { name: [kernelContainerName(infra.config.SESSIONFLOW_INSTANCE, spec.sessionId, 'main1')] } });
    expect(named).toHaveLength(1);
    const info = await nodeB.getContainer(first.containerId).inspect();
    expect(info.Config.Env).toEqual(expect.arrayContaining([`API_TOKEN=${secret}`, 'PLAIN=visible', `SF_SESSION_ID=${spec.sessionId}`, 'SF_CLUSTER_ROLE=main', 'SF_CLUSTER_IDX=1', 'SF_CLUSTER_HOST=main1', 'SF_CLUSTER_HOSTS=main1', 'SF_CLUSTER_SIZE=1']));
    expect(JSON.stringify(info.Config.Labels)).not.toContain(secret);
    expect(logs.length).toBeGreaterThan(0);
    expect(JSON.stringify(logs.map(({ message, meta }) => ({ message, meta })))).not.toContain(secret);
    // Nor is it on a container of the main engine: the kernel lives on node b only.
    expect(await ignoreNotFound(infra.docker.getContainer(first.containerId).inspect())).toBeUndefined();
  });

  it('gives the kernel its resources as limits, no capabilities, no new privileges, the user work and gVisor', async () => {
    const { containerId } = await run(activities.createKernel, kernel({ resources: { cpuMillis: 1500, memoryBytes: 300 * 1024 * 1024, gpu: 0 } }));
    const { HostConfig, Config } = await nodeB.getContainer(containerId).inspect();
    expect(HostConfig.NanoCpus).toBe(1_500_000_000);
    // Under gVisor the cgroup also holds gVisor's own kernel, on top of what the session asked.
    expect(HostConfig.Memory).toBeGreaterThanOrEqual(300 * 1024 * 1024);
    expect(HostConfig.MemorySwap).toBe(HostConfig.Memory);
    expect(HostConfig.PidsLimit).toBeGreaterThan(0);
    expect(HostConfig.CapDrop).toEqual(['ALL']);
    expect(HostConfig.CapAdd ?? []).toEqual([]);
    expect(HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(HostConfig.NetworkMode).toBe('none');
    expect(HostConfig.Runtime).toBe('runsc');
    expect(Config.User).toBe('1000:1000');
    expect(Config.Hostname).toBe('main1');
  });

  it('lets work list, stat, copy, measure and find files in the kernel under gVisor', async () => {
    const { containerId } = await run(activities.createKernel, kernel());
    expect(await execAsWork(nodeB, containerId, ['sh', '-c', fileToolsScript])).toEqual({ output: fileToolsOutput, exitCode: 0 });
  });

  it('runs the bootstrap script once, its output in the container log and its exit code recorded', async () => {
    const { containerId } = await run(activities.createKernel, kernel({ bootstrapScript: '#!/bin/sh\necho "bootstrap says hello as $(id -un)"\nexit 3\n' }));
    expect(await bootstrapped(containerId)).toEqual({ done: true, exitCode: 3, running: true });
    expect(await containerLog(nodeB, containerId)).toContain('bootstrap says hello as work');
  });

  it('keeps vfolder data and the container files across a restart without running the bootstrap again, and shows the data to the owner\'s next kernel', async () => {
    volumes.push(vfolderVolumeName(infra.config.SESSIONFLOW_INSTANCE, ownerId, 'data'));
    const { containerId } = await run(activities.createKernel, kernel({ vfolders: ['data'], bootstrapScript: 'echo ran >> /home/work/data/bootstrap-runs\n' }));
    expect(await bootstrapped(containerId)).toMatchObject({ exitCode: 0 });
    expect(await execAsWork(nodeB, containerId, ['sh', '-c', 'echo kept > /home/work/data/notes && echo mine > /home/work/layer-file'])).toMatchObject({ exitCode: 0 });

    await run(activities.restartKernel, { containerId });

    expect(await run(activities.inspectKernels, { containerIds: [containerId] })).toEqual({ [containerId]: 'running' });
    const after = await execAsWork(nodeB, containerId, ['sh', '-c', `cat /home/work/data/notes /home/work/layer-file /home/work/data/bootstrap-runs ${bootstrapStatusPath}`]);
    expect(after).toEqual({ output: 'kept\nmine\nran\n0\n', exitCode: 0 });

    const next = await run(activities.createKernel, kernel({ vfolders: ['data'] }));
    expect(await execAsWork(nodeB, next.containerId, ['cat', '/home/work/data/notes'])).toEqual({ output: 'kept\n', exitCode: 0 });
  });

  it('lets main1 of a single-node cluster run `ssh sub1 hostname` over the cluster network, and removes the whole cluster by its session', async () => {
    const sessionId = randomUUID();
    const { network } = await run(activities.ensureClusterNetwork, { sessionId });
    expect(await run(activities.ensureClusterNetwork, { sessionId })).toEqual({ network });
    const { keyId } = await clusterKeys.ensureClusterKeyPair({ sessionId, ownerId });
    const sealedBefore = (await infra.pool.query('SELECT sealed FROM compute_secrets WHERE id = $1', [keyId])).rows[0];
    expect(await clusterKeys.ensureClusterKeyPair({ sessionId, ownerId })).toEqual({ keyId });
    expect((await infra.pool.query('SELECT sealed FROM compute_secrets WHERE id = $1', [keyId])).rows[0]).toEqual(sealedBefore);

    const hosts = ['main1', 'sub1'];
    const [main1, sub1] = await Promise.all(hosts.map((hostname, i) => run(activities.createKernel, kernel({
      sessionId, hostname, role: i === 0 ? 'main' : 'sub', idx: 1, network, clusterHosts: hosts, clusterKeyId: keyId,
    }))));
    await Promise.all([bootstrapped(main1!.containerId), bootstrapped(sub1!.containerId)]);

    // The host holds no address on the cluster network: a kernel cannot reach its listeners.
    const { IPAM } = await nodeB.getNetwork(network).inspect() as { IPAM: { Config: { Gateway?: string; Subnet?: string }[] } };
    const hostAddresses = execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' });
    const gateway = IPAM.Config[0]?.Gateway ?? IPAM.Config[0]?.Subnet?.replace(/\.0\/\d+$/, '.1');
    expect(gateway).toBeDefined();
    expect(hostAddresses).not.toContain(` ${gateway}/`);

    const ssh = await eventually(async () => {
      const result = await execAsWork(nodeB, main1!.containerId, ['ssh', '-o', 'BatchMode=yes', 'sub1', 'hostname']);
      return result.exitCode === 0 ? result : undefined;
    }, 15);
    expect(ssh.output).toBe('sub1\n');
    const envOfSub = (await nodeB.getContainer(sub1!.containerId).inspect()).Config.Env;
    expect(envOfSub).toEqual(expect.arrayContaining(['SF_CLUSTER_ROLE=sub', 'SF_CLUSTER_HOST=sub1', 'SF_CLUSTER_HOSTS=main1,sub1', 'SF_CLUSTER_SIZE=2']));

    // The session's removal finds its kernels by label, also one whose id the workflow never learnt.
    await run(activities.removeSessionKernels, { sessionId });
    await run(activities.removeSessionKernels, { sessionId });
    expect(await run(activities.inspectKernels, { containerIds: [main1!.containerId, sub1!.containerId] })).toEqual({ [main1!.containerId]: 'missing', [sub1!.containerId]: 'missing' });
    await run(activities.removeClusterNetwork, { sessionId });
    await run(activities.removeClusterNetwork, { sessionId });
    expect(await ignoreNotFound(nodeB.getNetwork(network).inspect())).toBeUndefined();
  });
});

describe('removeKernel and inspectKernels', () => {
  it('removes a kernel once and again without complaint, after which it is reported missing', async () => {
    const running = await run(activities.createKernel, kernel());
    const removed = await run(activities.createKernel, kernel());
    await run(activities.removeKernel, removed);
    await run(activities.removeKernel, removed);
    expect(await run(activities.inspectKernels, { containerIds: [running.containerId, removed.containerId] })).toEqual({
      [running.containerId]: 'running',
      [removed.containerId]: 'missing',
    });
    expect(await run(activities.kernelBootstrapState, removed)).toEqual({ done: false, running: false });
  });
});
