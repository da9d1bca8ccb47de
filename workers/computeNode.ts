import { Worker, type NativeConnection } from '@temporalio/worker';
import type Docker from 'dockerode';
import { cpus, totalmem } from 'node:os';
import type { Pool } from 'pg';
import { createComputeNodeActivities } from '../activities/compute/node';
import { createNodeStore } from '../activities/compute/nodeStore';
import { sweepEndedSessionKernels, sweepServiceListeners } from '../activities/compute/nodeSweep';
import { computeSecretsSealer } from '../activities/compute/secretStore';
import { ServiceProxy } from '../activities/compute/serviceProxy';
import type { ContainerRuntime } from '../activities/shared/containerRuntime';
import type { ResourceSlots } from '../domain/compute/compute';
import { nodeTaskQueue } from '../domain/shared/taskQueues';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';

export interface ComputeNodeOptions {
  config: Config;
  connection: NativeConnection;
  /** This node's engine: every node activity acts on it. */
  docker: Docker;
  pool: Pool;
  containerRuntime: ContainerRuntime;
  log: Logger;
  /** Defaults from config (COMPUTE_NODE_*); tests name their own nodes and queues. */
  name?: string;
  taskQueue?: string;
  scalingGroup?: string;
  capacity?: Partial<ResourceSlots>;
}

export interface ComputeNode {
  name: string;
  taskQueue: string;
  worker: Worker;
  /** The listeners of the services of this node's kernels (open while the node runs). */
  services: ServiceProxy;
  /** Polls until shutdown (or the process's SIGINT/SIGTERM), heartbeating meanwhile. */
  run(): Promise<void>;
  shutdown(): Promise<void>;
}

/** What the node declares: config, else this host's cores and memory. */
export function nodeCapacity(config: Pick<Config, 'COMPUTE_NODE_CPU' | 'COMPUTE_NODE_MEMORY' | 'COMPUTE_NODE_GPU'>, given: Partial<ResourceSlots> = {}): ResourceSlots {
  return {
    cpuMillis: given.cpuMillis ?? Math.round((config.COMPUTE_NODE_CPU ?? cpus().length) * 1000),
    memoryBytes: given.memoryBytes ?? config.COMPUTE_NODE_MEMORY ?? totalmem(),
    gpu: given.gpu ?? config.COMPUTE_NODE_GPU,
  };
}

/**
 * A compute node: registers its row in compute_nodes (capacity, scaling group, queue), then
 * heartbeats it every COMPUTE_NODE_HEARTBEAT_SECONDS while a worker polls the node's own queue
 * with the node activities only, built on this node's engine. A heartbeat that fails (database
 * away) is logged and tried again next time: the scheduler reads a stale heartbeat as a dead
 * node, which is what it is to the rest of the system.
 */
export async function startComputeNode(options: ComputeNodeOptions): Promise<ComputeNode> {
  const { config, connection, docker, pool, containerRuntime } = options;
  const name = options.name ?? config.COMPUTE_NODE_NAME;
  const taskQueue = options.taskQueue ?? nodeTaskQueue(name);
  const log = options.log.child({ node: name, taskQueue });
  const store = createNodeStore(pool);
  const registration = { name, taskQueue, scalingGroup: options.scalingGroup ?? config.COMPUTE_NODE_SCALING_GROUP, capacity: nodeCapacity(config, options.capacity) };
  await store.register(registration);
  const sealer = computeSecretsSealer(config.COMPUTE_SECRETS_KEY);
  // Owned here, not by the activities: the listeners live as long as this process, and a node
  // started again opens those of its services anew (sweepServiceListeners).
  const services = new ServiceProxy(docker);

  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    // A cancel reaches an activity only with the answer to a heartbeat it sends: a push's heartbeats
    // go out every 2 s (not every 24 s of a 30 s timeout), so a cancelled push stops in seconds.
    maxHeartbeatThrottleInterval: '2s',
    activities: createComputeNodeActivities({
      docker,
      pool,
      instance: config.SESSIONFLOW_INSTANCE,
      containerRuntime,
      sealer,
      registryAddress: config.REGISTRY_ADDRESS,
      serviceProxy: services,
    }),
  });

  const sweep = async () => {
    try {
      const removed = await sweepEndedSessionKernels({ docker, pool, instance: config.SESSIONFLOW_INSTANCE });
      if (removed > 0) log.info({ removed }, 'removed kernels of ended sessions');
    } catch (err) {
      log.warn({ err }, 'compute node sweep failed: it runs again with a later heartbeat');
    }
    try {
      const { opened, closed, moved, failed } = await sweepServiceListeners({ pool, sealer, proxy: services, node: name });
      if (opened.length + closed.length + moved.length + failed.length > 0) log.info({ opened, closed, moved, failed }, 'service listeners swept');
    } catch (err) {
      log.warn({ err }, 'service listeners sweep failed: it runs again with a later heartbeat');
    }
  };
  let beats = 0;
  const beat = async () => {
    // About once a minute, what ended sessions left on this node goes.
    if (++beats % Math.max(1, Math.round(60 / config.COMPUTE_NODE_HEARTBEAT_SECONDS)) === 0) await sweep();
    try {
      if (!(await store.heartbeat(name))) {
        log.warn('compute node row gone: registering again');
        await store.register(registration);
      }
    } catch (err) {
      log.warn({ err }, 'compute node heartbeat failed');
    }
  };
  let heartbeat: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  log.info({ scalingGroup: registration.scalingGroup, capacity: registration.capacity }, 'compute node registered');

  return {
    name,
    taskQueue,
    worker,
    services,
    run() {
      running ??= (async () => {
        await sweep();
        heartbeat = setInterval(() => void beat(), config.COMPUTE_NODE_HEARTBEAT_SECONDS * 1000);
        try {
          await worker.run();
        } finally {
          clearInterval(heartbeat);
          await services.closeAll();
          await store.signOff(name).catch((err: unknown) => log.warn({ err }, 'compute node could not sign off: it counts as alive until its heartbeat is stale'));
        }
      })();
      return running;
    },
    async shutdown() {
      clearInterval(heartbeat);
      if (!running) return;
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
