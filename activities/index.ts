import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { createDatabaseActivities } from './database';
import { createDockerActivities } from './docker';
import { createRegistryActivities } from './registry';
import type { SelfCheckActivities } from './types';

export interface ActivityDeps {
  docker: Docker;
  pool: Pool;
  baseImage: string;
  registryAddress: string;
}

/** Every activity the worker registers, built from its real dependencies. */
export function createActivities(deps: ActivityDeps): SelfCheckActivities {
  return {
    ...createDockerActivities(deps),
    ...createDatabaseActivities(deps),
    ...createRegistryActivities(deps),
  };
}
