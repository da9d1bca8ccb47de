import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { createDatabaseActivities } from './database';
import { createDockerActivities } from './docker';
import { createRegistryActivities } from './registry';
import { createTerminalActivities } from './terminal';

export interface ActivityDeps {
  docker: Docker;
  pool: Pool;
  baseImage: string;
  registryAddress: string;
  instance: string;
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
    ...createTerminalActivities(deps),
  };
}
