import { Context, log } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { HostConfig } from 'dockerode';
import type { Pool } from 'pg';
import { extract } from 'tar-stream';
import type { ResourceSlots } from '../../domain/compute/compute';
import { vfolderVolumeName } from '../../domain/compute/vfolders';
import { domainFailure } from '../../domain/shared/errors';
import type { Sealer } from '../../platform/sealer';
import { fitHostConfig, gvisorNetworkRuntime, gvisorRuntime, type ContainerRuntime } from '../shared/containerRuntime';
import { ignoreNotFound, instanceLabel, sessionflowLabels, statusOf } from '../shared/docker';
import { followProgress, manifestDigest, splitReference, type RegistryAuth } from '../shared/registry';
import { createRegistryStore } from './registryStore';
import type { ClusterKeyPair } from './clusterKeys';
import { createImageCommitNodeActivities } from './imageCommit';
import { createKernelFileActivities } from './kernelFiles';
import { createKernelLogActivities } from './kernelLogs';
import { createKernelRunActivities } from './kernelRun';
import { createKernelUsageActivities } from './kernelUsage';
import { bootstrapStatusPath, kernelCommand, kernelFiles, kernelFilesArchive, kernelUser, type ClusterKey } from './kernelInit';
import { createSecretStore } from './secretStore';
import { ServiceProxy } from './serviceProxy';
import { closeSessionServices, createServiceActivities } from './services';

const computeKind = 'compute';
export const computeSessionLabel = 'org.sessionflow.compute-session';
export const computeKernelLabel = 'org.sessionflow.compute-kernel';
export const computeHostnameLabel = 'org.sessionflow.compute-hostname';
/** On vfolder volumes only: whose data they hold. */
const computeOwnerLabel = 'org.sessionflow.compute-owner';

/**
 * Processes (threads too) one kernel may run. Under gVisor it becomes the sandbox's RLIMIT_NPROC,
 * and the cgroup limits get gVisor's own share on top (fitHostConfig).
 */
const kernelPidsLimit = 256;
/** What a kernel writes to stdout (the bootstrap's output, later its runner's) is kept in the engine's log, bounded. */
const kernelLogConfig = { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } };

export interface KernelSpec {
  sessionId: string;
  ownerId: string;
  kernelId: string;
  hostname: string;
  role: 'main' | 'sub';
  idx: number;
  imageReference: string;
  resources: ResourceSlots;
  env: Record<string, string>;
  /** A compute_secrets row: the session's secret_env, a JSON object of name → value, opened only here. */
  secretId?: string;
  vfolders: string[];
  /** The cluster network (ensureClusterNetwork) on this node; without it the kernel has no network at all. */
  network?: string;
  clusterHosts: string[];
  /** A compute_secrets row holding the cluster's SSH key pair (ensureClusterKeyPair). */
  clusterKeyId?: string;
  bootstrapScript?: string;
}

export type KernelState = 'running' | 'exited' | 'missing';

export interface ComputeNodeDeps {
  /** This node's engine. */
  docker: Docker;
  pool: Pool;
  instance: string;
  /** The runtime of containers holding user code on this node's engine (gVisor where it has it). */
  containerRuntime: ContainerRuntime;
  /** Opens compute_secrets rows (COMPUTE_SECRETS_KEY). */
  sealer: Sealer;
  /** host:port of the registry every node pulls kernel images from. */
  registryAddress: string;
  /** The listeners of this node's services, owned by its worker (which opens them again at start); a new one when not given. */
  serviceProxy?: ServiceProxy;
}

/**
 * Whether the node's copy of a registry reference is what the registry holds under it now. A
 * reference by digest cannot move; an unreachable registry or a tag it no longer has leaves the
 * node's copy in use.
 */
async function holdsRegistryDigest(source: { address: string; credentials?: RegistryAuth }, reference: string, repoDigests: string[]): Promise<boolean> {
  if (reference.includes('@')) return true;
  const { repository, tag } = splitReference(source.address, reference);
  const current = await manifestDigest(source.address, repository, tag, source.credentials).catch((err: unknown) => {
    log.warn('registry unreachable: the node keeps its copy of the image', { image: reference, error: String(err) });
    return undefined;
  });
  return current === undefined || repoDigests.includes(`${source.address}/${repository}@${current}`);
}

/** `sf-<instance>-<session id's first 8>-<hostname>`: a retried create finds the container the lost attempt made. */
export function kernelContainerName(instance: string, sessionId: string, hostname: string): string {
  return `sf-${instance}-${sessionId}-${hostname}`;
}

export function clusterNetworkName(instance: string, sessionId: string): string {
  return `sf-${instance}-net-${sessionId}`;
}


/**
 * The activities a compute node runs against its own Docker engine, on its own task queue
 * (`node/<name>`). Every one is idempotent: containers, networks and volumes are found again by
 * name, and something already gone is done.
 */
export function createComputeNodeActivities({ docker, pool, instance, containerRuntime, sealer, registryAddress, serviceProxy }: ComputeNodeDeps) {
  const secrets = createSecretStore(pool, sealer);
  const registries = createRegistryStore(pool, sealer);
  const proxy = serviceProxy ?? new ServiceProxy(docker);

  return {
    // Execute, interrupt, complete: through the kernel's runner.
    ...createKernelRunActivities(docker),
    // Container logs, for the logs update and the copy kept at termination.
    ...createKernelLogActivities(docker),
    // Commit, tag, push and clean up of a session's main kernel (an imageCommit child workflow).
    ...createImageCommitNodeActivities({ docker, pool, sealer }),
    // List, upload, download: bytes staged in PostgreSQL.
    ...createKernelFileActivities(docker, pool),
    // Services (jupyter, custom apps, direct access): started in the main kernel, listened for on this node.
    ...createServiceActivities({ docker, pool, sealer, proxy }),
    // Resource use (docker stats), for the abuse report and the reconciler's look for abuse.
    ...createKernelUsageActivities(docker),

    /**
     * Pulls the image from the registry when this node lacks it, or holds another digest than
     * the registry's under that tag (a rebuilt image pushed again: Backend.AI's `digest` auto-pull).
     * Only the bring-up's registry and registered ones are pulled from (a registered one with its
     * credentials, opened here): anything else the node does not already hold, or a reference the
     * registry does not have, is ImageNotFound.
     */
    async pullKernelImage({ reference }: { reference: string }): Promise<{ pulled: boolean }> {
      const local = await ignoreNotFound(docker.getImage(reference).inspect());
      const source = await registries.sourceOf(reference, registryAddress);
      if (local && (!source || await holdsRegistryDigest(source, reference, local.RepoDigests ?? []))) return { pulled: false };
      if (!source) throw domainFailure('ImageNotFound', `image ${reference} is not on this node and not in the registry ${registryAddress} or a registered one`, { image: reference });
      try {
        const authconfig = source.credentials && { ...source.credentials, serveraddress: source.address };
        const events = await followProgress(docker, await docker.pull(reference, authconfig ? { authconfig } : {}));
        const failed = events.find((event) => event.error);
        if (failed) throw new Error(failed.error);
      } catch (err) {
        if (statusOf(err) === 404 || /not found|manifest unknown/i.test(String(err))) {
          throw domainFailure('ImageNotFound', `the registry ${source.address} has no image ${reference}`, { image: reference });
        }
        throw err;
      }
      return { pulled: true };
    },

    /** An internal network for a single-node cluster: its kernels reach each other by hostname, nothing else. */
    async ensureClusterNetwork({ sessionId }: { sessionId: string }): Promise<{ network: string }> {
      const name = clusterNetworkName(instance, sessionId);
      if (await ignoreNotFound(docker.getNetwork(name).inspect())) return { network: name };
      try {
        await docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          Internal: true,
          CheckDuplicate: true,
          // The host's end of the bridge gets no address: kernels reach each other, never a
          // service of the host listening on all addresses (an internal network alone still
          // gives the host a gateway address on it).
          Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
          Labels: sessionflowLabels(instance, computeKind, { [computeSessionLabel]: sessionId }),
        });
      } catch (err) {
        // A retry overlapping a slow first try: the other one made it.
        if (statusOf(err) !== 409) throw err;
      }
      return { network: name };
    },

    /** After the session's kernels are removed (Docker refuses to remove a network with containers on it); one already gone is done. */
    async removeClusterNetwork({ sessionId }: { sessionId: string }): Promise<void> {
      await ignoreNotFound(docker.getNetwork(clusterNetworkName(instance, sessionId)).remove());
    },

    /**
     * Makes and starts one kernel, or finds the one a lost attempt made: a running container of
     * this session under the kernel's name is it; one that never got running is replaced.
     * secret_env is opened here and goes into the container's environment only — never into
     * labels, logs or the result.
     */
    async createKernel(spec: KernelSpec): Promise<{ containerId: string }> {
      const name = kernelContainerName(instance, spec.sessionId, spec.hostname);
      const found = await ignoreNotFound(docker.getContainer(name).inspect());
      if (found) {
        if (found.Config.Labels?.[computeSessionLabel] !== spec.sessionId) {
          throw domainFailure('Internal', `container ${name} belongs to another session (${found.Config.Labels?.[computeSessionLabel] ?? 'none'})`);
        }
        if (found.State.Running) return { containerId: found.Id };
        log.info('replacing a half-made kernel', { sessionId: spec.sessionId, kernelId: spec.kernelId, containerId: found.Id, state: found.State.Status });
        await ignoreNotFound(docker.getContainer(found.Id).remove({ force: true }));
      }
      if (!(await ignoreNotFound(docker.getImage(spec.imageReference).inspect()))) {
        throw domainFailure('ImageNotFound', `image ${spec.imageReference} is not on this node (pull it first)`, { image: spec.imageReference });
      }

      const secretEnv = spec.secretId ? await openSecretEnv(spec.secretId) : {};
      const cluster = spec.clusterKeyId ? await openClusterKey(spec.clusterKeyId, spec.clusterHosts) : undefined;
      const volumes = await Promise.all(spec.vfolders.map(async (folder) => ({ folder, volume: await ensureVfolderVolume(spec.ownerId, folder) })));

      let container: Docker.Container;
      try {
        container = await docker.createContainer({
          name,
          Image: spec.imageReference,
          Cmd: kernelCommand,
          Hostname: spec.hostname,
          User: `${kernelUser.uid}:${kernelUser.gid}`,
          WorkingDir: kernelUser.home,
          Env: Object.entries({ ...spec.env, ...secretEnv, ...clusterEnv(spec), HOME: kernelUser.home }).map(([key, value]) => `${key}=${value}`),
          Labels: sessionflowLabels(instance, computeKind, {
            [computeSessionLabel]: spec.sessionId,
            [computeKernelLabel]: spec.kernelId,
            [computeHostnameLabel]: spec.hostname,
          }),
          HostConfig: await kernelHostConfig(spec, volumes.map(({ folder, volume }) => ({ Type: 'volume' as const, Source: volume, Target: `${kernelUser.home}/${folder}` }))),
          ...(spec.network && { NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: [spec.hostname] } } } }),
        });
      } catch (err) {
        // Two attempts raced: the other made the container and will start it; ours is the same kernel.
        if (statusOf(err) !== 409) throw err;
        container = docker.getContainer(name);
        const info = await container.inspect();
        if (info.State.Running) return { containerId: info.Id };
      }
      // The init, the bootstrap script, the cluster's SSH setup, and each vfolder's root made
      // writable by `work` (Docker makes a new volume's root root-owned): written before start,
      // through Docker's archive API, which mounts the container's volumes for it.
      const archive = await kernelFilesArchive(kernelFiles({ bootstrapScript: spec.bootstrapScript, cluster }), spec.vfolders);
      await container.putArchive(archive, { path: kernelUser.home });
      await container.start().catch((err: unknown) => {
        if (statusOf(err) !== 304) throw err; // 304: already started
      });
      const { Id } = await container.inspect();
      log.info('kernel created', { sessionId: spec.sessionId, kernelId: spec.kernelId, hostname: spec.hostname, containerId: Id });
      return { containerId: Id };
    },

    /**
     * Whether the bootstrap script has run (and how it ended), and whether the kernel runs; a
     * container that is gone is neither. With `waitMs`, waits that long at most for the script
     * to end, looking every 50 ms: the workflow's own timers tick by the second on a dev server,
     * so the wait belongs here.
     */
    async kernelBootstrapState({ containerId, waitMs = 0 }: { containerId: string; waitMs?: number }): Promise<{ done: boolean; exitCode?: number; running: boolean }> {
      const container = docker.getContainer(containerId);
      const deadline = Date.now() + waitMs;
      const activity = Context.current();
      for (;;) {
        activity.heartbeat();
        const info = await ignoreNotFound(container.inspect());
        if (!info) return { done: false, running: false };
        const status = await readFile(container, bootstrapStatusPath);
        const exitCode = status === undefined ? undefined : Number.parseInt(status.trim(), 10);
        if (exitCode !== undefined && !Number.isNaN(exitCode)) return { done: true, exitCode, running: info.State.Running };
        if (!info.State.Running || Date.now() >= deadline) return { done: false, running: info.State.Running };
        // Cancellation-aware: a forced destroy does not wait for the look to end.
        await activity.sleep(50);
      }
    },

    /** Restarts the kernel's container: its files and vfolders stay, and the bootstrap script does not run again (its status is kept). */
    async restartKernel({ containerId }: { containerId: string }): Promise<void> {
      try {
        await docker.getContainer(containerId).restart({ t: 5 });
      } catch (err) {
        if (statusOf(err) === 404) throw domainFailure('ContainerLost', `kernel container ${containerId} is gone from this node`, { containerId });
        throw err;
      }
    },

    /** Removes the kernel's container (vfolder volumes stay); one already gone is done. */
    async removeKernel({ containerId }: { containerId: string }): Promise<void> {
      await ignoreNotFound(docker.getContainer(containerId).remove({ force: true }));
    },

    /**
     * Removes every kernel of the session on this node, found by the session's label: also a
     * container whose create never answered (its id unknown to the workflow). Vfolders stay.
     * The session's service listeners on this node close first.
     */
    async removeSessionKernels({ sessionId }: { sessionId: string }): Promise<void> {
      await closeSessionServices({ pool, sealer, proxy }, sessionId);
      const listed = await docker.listContainers({ all: true, filters: { label: [`${instanceLabel}=${instance}`, `${computeSessionLabel}=${sessionId}`] } });
      await Promise.all(listed.map((container) => ignoreNotFound(docker.getContainer(container.Id).remove({ force: true }))));
    },

    async inspectKernels({ containerIds }: { containerIds: string[] }): Promise<Record<string, KernelState>> {
      const states = await Promise.all(containerIds.map(async (id) => {
        const info = await ignoreNotFound(docker.getContainer(id).inspect());
        const state: KernelState = !info ? 'missing' : info.State.Running ? 'running' : 'exited';
        return [id, state] as const;
      }));
      return Object.fromEntries(states);
    },
  };

  async function kernelHostConfig(spec: KernelSpec, mounts: NonNullable<HostConfig['Mounts']>): Promise<HostConfig> {
    const runtime = await containerRuntime();
    // User code: no capabilities at all (sshd runs as `work` on an unprivileged port, so
    // nothing in the kernel needs one), nothing gained through setuid binaries, bounded memory
    // (no swap), CPU and processes; docker-init reaps what user programs orphan.
    const hostConfig = fitHostConfig(runtime, {
      NetworkMode: spec.network ?? 'none',
      Memory: spec.resources.memoryBytes,
      MemorySwap: spec.resources.memoryBytes,
      NanoCpus: spec.resources.cpuMillis * 1_000_000,
      PidsLimit: kernelPidsLimit,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      Mounts: mounts,
      LogConfig: kernelLogConfig,
    });
    // runsc as registered for executions has no network: a kernel on a cluster network needs the other entry.
    if (runtime === gvisorRuntime && spec.network) {
      const { Runtimes } = (await docker.info()) as { Runtimes?: Record<string, unknown> };
      if (!Runtimes || !(gvisorNetworkRuntime in Runtimes)) {
        throw new Error(`this node's engine has no ${gvisorNetworkRuntime} runtime for kernels on a network: run scripts/ensure-runsc.sh for it`);
      }
      return { ...hostConfig, Runtime: gvisorNetworkRuntime };
    }
    return hostConfig;
  }

  async function openSecretEnv(secretId: string): Promise<Record<string, string>> {
    const plaintext = await secrets.open(secretId);
    if (plaintext === undefined) throw domainFailure('Internal', `the session's secret environment (${secretId}) is gone`);
    const parsed: unknown = JSON.parse(plaintext);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((value) => typeof value === 'string')) {
      throw domainFailure('Internal', `the session's secret environment (${secretId}) is not an object of strings`);
    }
    return parsed as Record<string, string>;
  }

  async function openClusterKey(keyId: string, hosts: string[]): Promise<ClusterKey> {
    const plaintext = await secrets.open(keyId);
    if (plaintext === undefined) throw domainFailure('Internal', `the cluster's SSH key pair (${keyId}) is gone`);
    const { privateKey, publicKey } = JSON.parse(plaintext) as ClusterKeyPair;
    return { privateKey, publicKey, hosts };
  }

  async function ensureVfolderVolume(ownerId: string, folder: string): Promise<string> {
    const name = vfolderVolumeName(instance, ownerId, folder);
    // Creating a named volume that exists returns it unchanged: no race to handle.
    await docker.createVolume({ Name: name, Labels: sessionflowLabels(instance, computeKind, { [computeOwnerLabel]: ownerId }) });
    return name;
  }
}

export type ComputeNodeActivities = ReturnType<typeof createComputeNodeActivities>;

/** What every kernel learns about its cluster from its environment. */
function clusterEnv(spec: KernelSpec): Record<string, string> {
  return {
    SF_SESSION_ID: spec.sessionId,
    SF_CLUSTER_ROLE: spec.role,
    SF_CLUSTER_IDX: String(spec.idx),
    SF_CLUSTER_HOST: spec.hostname,
    SF_CLUSTER_HOSTS: spec.clusterHosts.join(','),
    SF_CLUSTER_SIZE: String(spec.clusterHosts.length),
  };
}

const maxStatusBytes = 64;

/** One small file's text from a container (running or not), through Docker's archive API; undefined when it is not there. */
async function readFile(container: Docker.Container, path: string): Promise<string | undefined> {
  const stream = await ignoreNotFound(container.getArchive({ path }) as Promise<NodeJS.ReadableStream>);
  if (!stream) return undefined;
  return new Promise((resolve, reject) => {
    const tar = extract();
    let text: string | undefined;
    tar.on('entry', (header, entry, next) => {
      // The file lives where the kernel's user can write: anything but a few bytes of a regular file is not a status.
      if (header.type !== 'file' || (header.size ?? 0) > maxStatusBytes) {
        entry.on('end', next);
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
      entry.on('end', () => {
        text ??= Buffer.concat(chunks).toString('utf8');
        next();
      });
      entry.resume();
    });
    tar.on('finish', () => resolve(text));
    tar.on('error', reject);
    stream.pipe(tar);
  });
}
