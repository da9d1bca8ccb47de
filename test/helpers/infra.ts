import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { createActivities } from '../../activities';
import { loadConfig, type Config } from '../../platform/config';
import { createPool } from '../../platform/database';
import { createDocker } from '../../platform/docker';
import { sandboxLimitsFrom } from '../../platform/executionSettings';

/** Real infrastructure as scripts/test.sh set it up (test database, loopback registry). */
export interface Infra {
  config: Config;
  pool: Pool;
  docker: Docker;
  activities: ReturnType<typeof createActivities>;
  close(): Promise<void>;
}

export function openInfra(): Infra {
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, 4);
  const docker = createDocker(config.DOCKER_SOCKET);
  return {
    config,
    pool,
    docker,
    activities: createActivities({ docker, pool, baseImage: config.BASE_IMAGE, registryAddress: config.REGISTRY_ADDRESS, instance: config.SESSIONFLOW_INSTANCE, sandbox: sandboxLimitsFrom(config) }),
    close: () => pool.end(),
  };
}
