import type Docker from 'dockerode';
import type { Pool } from 'pg';
import type { ActivityDeps } from '../activities';
import type { Config } from '../platform/config';
import { sandboxLimitsFrom } from '../platform/executionSettings';
import { chatSandboxLimitsFrom } from '../platform/sandboxSettings';

/** What every activity needs, from config: one place for the worker, the tests and the recorders. */
export function activityDepsFrom(config: Config, { docker, pool }: { docker: Docker; pool: Pool }): ActivityDeps {
  return {
    docker,
    pool,
    baseImage: config.BASE_IMAGE,
    registryAddress: config.REGISTRY_ADDRESS,
    instance: config.SESSIONFLOW_INSTANCE,
    sshTrustOnFirstUse: config.SSH_TRUST_ON_FIRST_USE,
    sandbox: sandboxLimitsFrom(config),
    chatSandbox: chatSandboxLimitsFrom(config),
  };
}
