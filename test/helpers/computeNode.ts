import type Docker from 'dockerode';
import { computeSessionLabel } from '../../activities/compute/node';
import { demultiplex, ignoreNotFound, instanceLabel } from '../../activities/shared/docker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { containerRuntimeResolver } from '../../activities/shared/containerRuntime';
import { createDocker } from '../../platform/docker';
import { createLogger } from '../../platform/logger';
import { startComputeNode } from '../../workers/computeNode';
import type { Infra } from './infra';

/** The second engine scripts/test.sh brings up (scripts/ensure-node-engine.sh): node b of the tests. */
export function nodeBDocker(): Docker {
  return createDocker(process.env.NODE_B_DOCKER_SOCKET ?? '/run/sf-node-b.sock');
}

/** Runs argv in a container as `work` through the Docker exec API (as the network rule asks: never dial a container). */
export async function execAsWork(docker: Docker, containerId: string, command: string[]): Promise<{ output: string; exitCode: number | null }> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: command, AttachStdout: true, AttachStderr: true, User: '1000:1000' });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return { output: demultiplex(Buffer.concat(chunks)), exitCode: (await exec.inspect()).ExitCode };
}

export async function containerLog(docker: Docker, containerId: string): Promise<string> {
  return demultiplex(await docker.getContainer(containerId).logs({ stdout: true, stderr: true, follow: false }));
}

/** Removes what the given sessions made on an engine (containers, then their networks) and the given owners' vfolder volumes. */
export async function removeComputeLeftovers(docker: Docker, instance: string, sessionIds: string[], volumeNames: string[]): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${instanceLabel}=${instance}`] } });
  const ours = containers.filter((c) => sessionIds.includes(c.Labels[computeSessionLabel] ?? ''));
  // A session's own removal may be under way: Docker's 409 then says the same as done.
  await Promise.all(ours.map((c) => ignoreNotFound(docker.getContainer(c.Id).remove({ force: true })).catch((err: { statusCode?: number }) => {
    if (err.statusCode !== 409) throw err;
  })));
  const networks = await docker.listNetworks({ filters: { label: [`${instanceLabel}=${instance}`] } });
  await Promise.all(networks.filter((n) => sessionIds.includes(n.Labels?.[computeSessionLabel] ?? '')).map((n) => ignoreNotFound(docker.getNetwork(n.Id).remove())));
  await Promise.all(volumeNames.map((name) => ignoreNotFound(docker.getVolume(name).remove({ force: true }))));
}

/** Polls until `probe` gives a value, for at most `seconds`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, seconds = 20): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`nothing after ${seconds}s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Everything of this test instance on node b's engine: for the run's teardown, once every test file is done. */
export async function removeInstanceLeftovers(instance = process.env.SESSIONFLOW_INSTANCE): Promise<void> {
  if (!instance) return;
  const docker = nodeBDocker();
  const label = { label: [`${instanceLabel}=${instance}`] };
  const containers = await docker.listContainers({ all: true, filters: label });
  await Promise.all(containers.map((c) => ignoreNotFound(docker.getContainer(c.Id).remove({ force: true }))));
  const networks = await docker.listNetworks({ filters: label });
  await Promise.all(networks.map((n) => ignoreNotFound(docker.getNetwork(n.Id).remove())));
  const { Volumes } = await docker.listVolumes({ filters: label });
  await Promise.all((Volumes ?? []).map((v) => ignoreNotFound(docker.getVolume(v.Name).remove({ force: true }))));
}

/**
 * A compute node worker of the test's own, in a scaling group of its own (made when missing), on
 * the main engine unless another is given; `stop` shuts it down, and it signs off.
 */
export async function startTestComputeNode(env: TestWorkflowEnvironment, infra: Infra, { group, name, docker = infra.docker }: { group: string; name: string; docker?: Docker }): Promise<{ stop(): Promise<void> }> {
  await infra.pool.query('INSERT INTO compute_scaling_groups (name) VALUES ($1) ON CONFLICT DO NOTHING', [group]);
  const node = await startComputeNode({
    config: { ...infra.config, TEMPORAL_NAMESPACE: env.namespace ?? infra.config.TEMPORAL_NAMESPACE }, connection: env.nativeConnection, docker, pool: infra.pool,
    containerRuntime: docker === infra.docker ? infra.containerRuntime : containerRuntimeResolver(docker, infra.config.CONTAINER_RUNTIME),
    log: createLogger('silent', 'test-node'), name, scalingGroup: group, capacity: { cpuMillis: 16_000, memoryBytes: 16 * 2 ** 30, gpu: 1 },
  });
  const running = node.run();
  return {
    async stop() {
      await node.shutdown();
      await running;
    },
  };
}
