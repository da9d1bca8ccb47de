import type Docker from 'dockerode';
import type { Pool } from 'pg';
import type { ActivityDeps } from '../activities';
import { computeStoreSettingsFrom } from '../activities/compute/store';
import { ContainerRuntimeUnavailableError, containerRuntimeResolver, type ContainerRuntime } from '../activities/shared/containerRuntime';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';
import { sandboxLimitsFrom } from '../platform/executionSettings';
import { chatSandboxLimitsFrom } from '../platform/sandboxSettings';
import { computeSecretsSealer } from '../activities/compute/secretStore';

export interface ActivityDepsSources {
  docker: Docker;
  pool: Pool;
  /** A process passes its own, built with its logger, so it resolves and warns once; tests and recorders get a silent one. */
  containerRuntime?: ContainerRuntime;
}

/** What every activity needs, from config: one place for the worker, the tests and the recorders. */
export function activityDepsFrom(config: Config, { docker, pool, containerRuntime }: ActivityDepsSources): ActivityDeps {
  return {
    docker,
    pool,
    containerRuntime: containerRuntime ?? containerRuntimeResolver(docker, config.CONTAINER_RUNTIME),
    baseImage: config.BASE_IMAGE,
    registryAddress: config.REGISTRY_ADDRESS,
    instance: config.SESSIONFLOW_INSTANCE,
    sshTrustOnFirstUse: config.SSH_TRUST_ON_FIRST_USE,
    sandbox: sandboxLimitsFrom(config),
    chatSandbox: chatSandboxLimitsFrom(config),
    computeSecrets: computeSecretsSealer(config.COMPUTE_SECRETS_KEY),
    computeControl: computeStoreSettingsFrom(config),
  };
}

/**
 * The runtime resolver of a process that creates containers, asked at its start: an explicit
 * `CONTAINER_RUNTIME=runsc` the engine lacks stops the process here, with the reason, before it
 * takes any task. An engine that does not answer yet is no reason to refuse (PXE and terminals
 * need no Docker): the first container asks again.
 */
export async function containerRuntimeAtStart(config: Pick<Config, 'CONTAINER_RUNTIME'>, docker: Docker, log: Logger): Promise<ContainerRuntime> {
  const containerRuntime = containerRuntimeResolver(docker, config.CONTAINER_RUNTIME, (message) => log.warn(message));
  const resolved = await containerRuntime().catch((err: unknown) => {
    if (err instanceof ContainerRuntimeUnavailableError) throw err;
    return 'unknown until Docker answers';
  });
  log.info({ containerRuntime: resolved, setting: config.CONTAINER_RUNTIME }, 'containers holding user code run under this runtime');
  return containerRuntime;
}
