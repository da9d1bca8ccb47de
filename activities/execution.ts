import { Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { PassThrough } from 'node:stream';
import { capForHistory, type ExecutionJob, type ExecutionResult } from '../domain/execution';
import { domainFailure } from '../domain/errors';
import { ensureImage, instanceLabel, kindLabel, managedLabel, sessionflowLabels, statusOf } from './docker';
import { recordExecution } from './executionRecords';
import { runnerSource, toRunnerJob } from './executionRunner';

/** Resource limits of every execution container (config). */
export interface SandboxLimits {
  memoryBytes: number;
  nanoCpus: number;
  pids: number;
  fileSizeBytes: number;
  workDirBytes: number;
}

export interface ExecutionActivityDeps {
  docker: Docker;
  pool: Pool;
  instance: string;
  sandbox: SandboxLimits;
}

export const runtimeLabel = 'org.sessionflow.runtime';
/** The pool workflow that owns a container: orphan sweeps are scoped to it. */
export const poolLabel = 'org.sessionflow.pool';
const sandboxUser = '65534:65534';
/** Stateless runs get /work/<requestId>; a session keeps /work/session across executions. */
const sessionWorkDir = '/work/session';

export function createExecutionActivities({ docker, pool, instance, sandbox }: ExecutionActivityDeps) {
  return {
    /**
     * A warm container: no network, read-only root, tmpfs work dirs, memory/CPU/pids/file-size
     * limits, every capability dropped. It only sleeps; executions arrive by `docker exec` as
     * nobody. Named by the pool's id for it, so a retried create finds the first one.
     */
    async createExecutionContainer({ name, image, runtime, pool: poolId }: { name: string; image: string; runtime: string; pool: string }): Promise<string> {
      try {
        const existing = await docker.getContainer(name).inspect();
        if (existing.State.Running) return existing.Id;
        await docker.getContainer(name).remove({ force: true });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      await ensureImage(docker, image);
      const tmpfs = `rw,exec,nosuid,nodev,mode=1777,size=${sandbox.workDirBytes}`;
      const container = await docker.createContainer({
        name,
        Image: image,
        Cmd: ['sleep', 'infinity'],
        Labels: sessionflowLabels(instance, 'execution', { [runtimeLabel]: runtime, [poolLabel]: poolId }),
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          ReadonlyRootfs: true,
          Tmpfs: { '/work': tmpfs, '/tmp': tmpfs },
          Memory: sandbox.memoryBytes,
          MemorySwap: sandbox.memoryBytes,
          NanoCpus: sandbox.nanoCpus,
          PidsLimit: sandbox.pids,
          Ulimits: [{ Name: 'fsize', Soft: sandbox.fileSizeBytes, Hard: sandbox.fileSizeBytes }],
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          // docker-init reaps what user programs orphan, so zombies never eat the pids limit.
          Init: true,
        },
      });
      await container.start();
      return container.id;
    },

    async removeExecutionContainer({ containerId }: { containerId: string }): Promise<void> {
      try {
        await docker.getContainer(containerId).remove({ force: true });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },

    /**
     * Runs one job in a leased container through the runner, as the sandbox user; records the
     * full result for the api and returns it cut to `historyOutputCap` for the workflow history.
     */
    async runInContainer(input: RunInContainerInput): Promise<{ result: ExecutionResult; truncated: boolean }> {
      const { containerId, job } = input;
      const runnerJob = toRunnerJob(job, {
        workDir: job.sessionKey ? sessionWorkDir : `/work/${job.requestId}`,
        keepWorkDir: Boolean(job.sessionKey),
        killAll: true,
        fileSizeLimit: sandbox.fileSizeBytes,
        // The container's pids limit bounds processes; RLIMIT_NPROC would count the host's nobody too.
        processLimit: 0,
      });
      // Heartbeats let Temporal notice a dead worker within the heartbeat timeout, not the run's.
      const beat = setInterval(() => heartbeatIfActivity(), 1000);
      try {
        const stages = await execRunner(docker, containerId, JSON.stringify(runnerJob));
        const result = { language: job.language, version: job.version, ...stages };
        await recordExecution(pool, { id: job.requestId, ownerId: input.ownerId, sessionId: input.sessionId, executor: 'docker', containerId, result });
        return capForHistory(result, input.historyOutputCap);
      } finally {
        clearInterval(beat);
      }
    },

    /** Removes this instance's execution containers that no pool knows (a crashed worker's). */
    async removeOrphanExecutionContainers({ pool: poolId, keep }: { pool: string; keep: string[] }): Promise<string[]> {
      const listed = await docker.listContainers({
        all: true,
        filters: { label: [`${managedLabel}=true`, `${instanceLabel}=${instance}`, `${kindLabel}=execution`, `${poolLabel}=${poolId}`] },
      });
      const known = new Set(keep);
      const orphans = listed.filter((c) => !known.has(c.Id) && !c.Names.some((n) => known.has(n.replace(/^\//, ''))));
      await Promise.all(orphans.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      return orphans.map((c) => c.Id);
    },
  };
}

export interface RunInContainerInput {
  containerId: string;
  job: ExecutionJob;
  ownerId: string;
  sessionId?: string;
  historyOutputCap: number;
}

function heartbeatIfActivity(): void {
  try {
    Context.current().heartbeat();
  } catch {
    // Called outside an activity (integration tests call the function directly).
  }
}

async function execRunner(docker: Docker, containerId: string, jobJson: string): Promise<Omit<ExecutionResult, 'language' | 'version'>> {
  let exec: Docker.Exec;
  try {
    exec = await docker.getContainer(containerId).exec({
      Cmd: ['python3', '-c', runnerSource],
      User: sandboxUser,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
  } catch (err) {
    if (statusOf(err) === 404 || statusOf(err) === 409) throw domainFailure('ContainerLost', `execution container ${containerId.slice(0, 12)} is gone`, { containerId });
    throw err;
  }
  const stream = await exec.start({ hijack: true, stdin: true });
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  docker.modem.demuxStream(stream, stdout, stderr);
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  stream.end(jobJson);
  await ended;
  const text = Buffer.concat(out).toString('utf8');
  try {
    return JSON.parse(text) as Omit<ExecutionResult, 'language' | 'version'>;
  } catch {
    const inspected = await exec.inspect().catch(() => undefined);
    const stderrTail = Buffer.concat(err).toString('utf8').slice(-2000);
    throw domainFailure('ExecutionFailed', `the runner in the execution container did not report a result (exit ${inspected?.ExitCode}): ${stderrTail.slice(-300)}`, {
      exitCode: inspected?.ExitCode, stderr: stderrTail,
    });
  }
}
