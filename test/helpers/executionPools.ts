import type { ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { randomUUID } from 'node:crypto';
import { runtimes, makePoolWorkflowId, type ExecutionJob, type RuntimeSpec } from '../../domain/execution/execution';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { eventually, startApiHarness, type ApiHarness } from './api';
import type { Infra } from './infra';
import { spawnWorkerProcess } from './workerProcess';

/** Ends the pool workflows of a test's task queue and removes every container they made. */
export async function removeExecutionPools(client: Client, infra: Infra, taskQueue: string): Promise<void> {
  for (const { language } of runtimes) {
    const poolId = makePoolWorkflowId(taskQueue, language);
    await client.workflow.getHandle(poolId).terminate('test finished').catch(() => undefined);
    await infra.activities.removeOrphanExecutionContainers({ pool: poolId, keep: [] });
  }
}

/** The api once per executor, for tests that hold the container pool and the local subprocess to one contract. */
export interface ExecutorHarnesses {
  docker: ApiHarness;
  local: ApiHarness;
  /** Stops both and removes the docker one's pools and containers. */
  stop(): Promise<void>;
}

export async function startExecutorHarnesses(env: TestWorkflowEnvironment, infra: Infra, dockerOverrides: Partial<Infra['config']> = {}): Promise<ExecutorHarnesses> {
  const started: ApiHarness[] = [];
  const stop = async () => {
    for (const harness of started) {
      await removeExecutionPools(env.client, infra, harness.taskQueue);
      await harness.stop();
    }
  };
  try {
    started.push(await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: false, ...dockerOverrides }));
    started.push(await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: true }));
  } catch (err) {
    await stop();
    throw err;
  }
  return { docker: started[0]!, local: started[1]!, stop };
}

/**
 * Whether Docker has removed each container, once it has them all (or after 20 s): a pool
 * forgets a retired container at once and removes it in an activity after.
 */
export function removedByDocker(docker: Docker, containerIds: string[]): Promise<boolean[]> {
  return eventually(
    () => Promise.all(containerIds.map((id) => docker.getContainer(id).inspect().then(() => false, () => true))),
    (gone) => gone.every(Boolean),
    20_000,
  );
}

/** The execution worker of test/helpers/executionWorkerProcess.ts in a process of its own, polling the execution queue of `taskQueue`. */
export function spawnExecutionWorker(taskQueue: string): Promise<ChildProcess> {
  return spawnWorkerProcess('./executionWorkerProcess.ts', taskQueue);
}

/** A job as the api would resolve it: one file of `code` in the runtime's entry file, a fresh request id. */
export function executionJob(runtime: RuntimeSpec, code: string, extra: Partial<ExecutionJob> = {}): ExecutionJob {
  return {
    requestId: randomUUID(), language: runtime.language, version: runtime.version,
    files: [{ name: runtime.defaultFile, content: Buffer.from(code).toString('base64') }],
    stdin: '', args: [], outputLimit: 65_536,
    run: { command: runtime.run, timeoutMs: 3000, memoryLimit: -1 },
    ...extra,
  };
}
