import type Docker from 'dockerode';
import type { Pool } from 'pg';
import type { Sealer } from '../platform/sealer';
import { createClusterKeyActivities } from './compute/clusterKeys';
import { createComputeControlActivities } from './compute/control';
import { createImageCommitControlActivities } from './compute/imageCommitControl';
import type { ComputeStoreSettings } from './compute/store';
import { createExecutionActivities, type SandboxLimits } from './execution/execution';
import { createSandboxActivities, type ChatSandboxLimits } from './sandbox/sandbox';
import type { ContainerRuntime } from './shared/containerRuntime';
import { createSelfCheckActivities } from './selfCheck/probes';
import { createPxeActivities } from './pxe/pxe';
import { createRetentionActivities } from './retention/retention';
import { SshPool } from './shared/ssh';
import { createTerminalActivities } from './terminal/terminal';

export interface ActivityDeps {
  docker: Docker;
  pool: Pool;
  /** The image sandboxes and the self-check's probe container run. */
  baseImage: string;
  /** host:port of the registry, as Docker names it in image references. */
  registryAddress: string;
  /** Labels every container this deployment makes, so reconcilers touch only their own. */
  instance: string;
  /** Boot servers' SSH connections; one pool per worker process when not given. */
  ssh?: SshPool;
  /** A boot server without a pinned host key gets the first key it presents pinned (false: refused). */
  sshTrustOnFirstUse: boolean;
  /** Resource limits of every execution container. */
  sandbox: SandboxLimits;
  /** Resource limits and writable area of every chat sandbox container. */
  chatSandbox: ChatSandboxLimits;
  /** The OCI runtime every container holding user code runs under (gVisor where the engine has it). */
  containerRuntime: ContainerRuntime;
  /** Seals and opens compute_secrets rows (COMPUTE_SECRETS_KEY). */
  computeSecrets: Sealer;
  /** Compute sessions' control plane: default quota, the secrets sealer, when a node counts as dead. */
  computeControl: ComputeStoreSettings;
}

/**
 * Every activity the worker registers, built from its real dependencies. A workflow proxies its
 * kind's own `XActivities` type (`ReturnType<typeof createXActivities>`, exported beside the
 * factory) through a type-only import.
 */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSelfCheckActivities(deps),
    ...createSandboxActivities(deps),
    ...createPxeActivities({ pool: deps.pool, ssh: deps.ssh ?? new SshPool(), trustOnFirstUse: deps.sshTrustOnFirstUse }),
    ...createExecutionActivities(deps),
    ...createTerminalActivities(deps),
    ...createRetentionActivities(deps),
    // The compute node activities are not here: they run only on node queues (workers/computeNode.ts).
    ...createClusterKeyActivities({ pool: deps.pool, sealer: deps.computeSecrets }),
    ...createComputeControlActivities(deps),
    ...createImageCommitControlActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
