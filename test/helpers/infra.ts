import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { activityDepsFrom } from '../../workers/activityDeps';
import { createActivities } from '../../activities';
import { containerRuntimeResolver, type ContainerRuntime } from '../../activities/shared/containerRuntime';
import { loadConfig, type Config } from '../../platform/config';
import { createPool } from '../../platform/database';
import { createDocker } from '../../platform/docker';

/** Real infrastructure as scripts/test.sh set it up (test database, loopback registry). */
export interface Infra {
  config: Config;
  pool: Pool;
  docker: Docker;
  activities: ReturnType<typeof createActivities>;
  /** The runtime the activities' containers run under (benchmarks run their CLI baselines under it too). */
  containerRuntime: ContainerRuntime;
  close(): Promise<void>;
}

export function openInfra(): Infra {
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, 4);
  const docker = createDocker(config.DOCKER_SOCKET);
  const containerRuntime = containerRuntimeResolver(docker, config.CONTAINER_RUNTIME);
  return {
    config,
    pool,
    docker,
    activities: createActivities(activityDepsFrom(config, { docker, pool, containerRuntime })),
    containerRuntime,
    close: () => pool.end(),
  };
}
