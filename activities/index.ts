import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { createDatabaseActivities } from './selfCheck/database';
import { createDockerActivities } from './shared/docker';
import { createExecutionActivities, type SandboxLimits } from './execution/execution';
import { createRegistryActivities } from './shared/registry';
import { createSandboxActivities } from './sandbox/sandbox';
import { createPxeActivities } from './pxe/pxe';
import { SshPool } from './shared/ssh';
import { createTerminalActivities } from './terminal/terminal';

export interface ActivityDeps {
  docker: Docker;
  pool: Pool;
  baseImage: string;
  registryAddress: string;
  instance: string;
  /** Boot servers' SSH connections; one pool per worker process when not given. */
  ssh?: SshPool;
  sandbox: SandboxLimits;
}

/**
 * Every activity the worker registers, built from its real dependencies. Workflows proxy
 * `ReturnType<typeof createActivities>` (or a family's own interface) through a type-only import.
 */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createDockerActivities(deps),
    ...createDatabaseActivities(deps),
    ...createRegistryActivities(deps),
    ...createSandboxActivities(deps),
    ...createPxeActivities({ pool: deps.pool, ssh: deps.ssh ?? new SshPool() }),
    ...createExecutionActivities(deps),
    ...createTerminalActivities(deps),
  };
}
