import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { ActivityDeps } from '..';
import { acquireUpdate, capForHistory, releaseSignal, type AcquireRequest, type ExecutionJob, type ExecutionResult, type Lease, type UnwritableFile } from '../../domain/execution/execution';
import { fitHostConfig } from '../shared/containerRuntime';
import { ensureImage, ignoreNotFound, instanceLabel, kindLabel, managedLabel, removeContainerIfPresent, sessionflowLabels } from '../shared/docker';
import { createExecutionStore } from './store';
import { runnerDigest, runnerLabel, runnerSource, splitRunnerResult, toRunnerJob } from './executionRunner';
import { RunnerLinks } from './runnerLinks';

/** Resource limits of every execution container (config). */
export interface SandboxLimits {
  memoryBytes: number;
  nanoCpus: number;
  pids: number;
  fileSizeBytes: number;
  workDirBytes: number;
}

const runtimeLabel = 'org.sessionflow.runtime';
/** The pool workflow that owns a container: orphan sweeps are scoped to it. */
const poolLabel = 'org.sessionflow.pool';
/** Stateless runs get /work/<requestId>; a session keeps /work/session across executions. */
const sessionWorkDir = '/work/session';

export function createExecutionActivities({ docker, pool, instance, sandbox, containerRuntime }: Pick<ActivityDeps, 'docker' | 'pool' | 'instance' | 'sandbox' | 'containerRuntime'>) {
  const runners = new RunnerLinks(docker);
  const store = createExecutionStore(pool);
  return {
    /**
     * A warm container: no network, read-only root, tmpfs work dirs, memory/CPU/pids/file-size
     * limits, every capability dropped but the three the runner needs. Its main process is the
     * runner, serving executions over the attached stdin/stdout as nobody. Named by the pool's
     * id for it, so a retried create finds the first one.
     */
    async createExecutionContainer({ name, image, runtime, pool: poolId }: { name: string; image: string; runtime: string; pool: string }): Promise<string> {
      const existing = await ignoreNotFound(docker.getContainer(name).inspect());
      if (existing?.State.Running && existing.Config.Labels?.[runnerLabel] === runnerDigest) return existing.Id;
      if (existing) await removeContainerIfPresent(docker, name);
      await ensureImage(docker, image);
      const tmpfs = `rw,exec,nosuid,nodev,mode=1777,size=${sandbox.workDirBytes}`;
      const container = await docker.createContainer({
        name,
        Image: image,
        // The runner serves every execution of the container's life over its stdin/stdout.
        Cmd: ['python3', '-c', runnerSource, 'serve'],
        OpenStdin: true,
        StdinOnce: false,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Labels: sessionflowLabels(instance, 'execution', { [runtimeLabel]: runtime, [poolLabel]: poolId, [runnerLabel]: runnerDigest }),
        NetworkDisabled: true,
        HostConfig: fitHostConfig(await containerRuntime(), {
          NetworkMode: 'none',
          ReadonlyRootfs: true,
          Tmpfs: { '/work': tmpfs, '/tmp': tmpfs },
          Memory: sandbox.memoryBytes,
          MemorySwap: sandbox.memoryBytes,
          NanoCpus: sandbox.nanoCpus,
          PidsLimit: sandbox.pids,
          Ulimits: [{ Name: 'fsize', Soft: sandbox.fileSizeBytes, Hard: sandbox.fileSizeBytes }],
          // The runner drops each job to nobody (SETUID, SETGID) and can always end what it started (KILL).
          CapDrop: ['ALL'],
          CapAdd: ['SETUID', 'SETGID', 'KILL'],
          // Results travel over the attached stdout; a log driver would keep every one on disk.
          LogConfig: { Type: 'none', Config: {} },
          SecurityOpt: ['no-new-privileges'],
          // docker-init reaps what user programs orphan, so zombies never eat the pids limit.
          Init: true,
          // A restarted Docker engine brings the pool's containers back instead of leaving it dead ones.
          RestartPolicy: { Name: 'unless-stopped' },
        }),
      });
      await container.start();
      return container.id;
    },

    async removeExecutionContainer({ containerId }: { containerId: string }): Promise<void> {
      await removeContainerIfPresent(docker, containerId);
    },

    /**
     * Runs one job in a leased container through the runner, as the sandbox user; records the
     * full result for the api and returns it cut to `historyOutputCap` for the workflow history.
     */
    async runInContainer(input: RunInContainerInput): Promise<{ result: ExecutionResult; truncated: boolean; retire?: boolean; unwritableFile?: UnwritableFile }> {
      const { containerId, job } = input;
      const runnerJob = toRunnerJob(job, {
        workDir: job.sessionKey ? sessionWorkDir : `/work/${job.requestId}`,
        keepWorkDir: Boolean(job.sessionKey),
        killAll: true,
        fileSizeLimit: sandbox.fileSizeBytes,
        // The container's pids limit bounds processes; RLIMIT_NPROC would count the host's nobody too.
        processLimit: 0,
      });
      // Past the job's own deadlines, the runner may still be ending what the job left: under
      // this gVisor a fork bomb's thousands of host tasks take tens of seconds to go on a busy machine.
      const guardMs = (job.compile?.timeoutMs ?? 0) + job.run.timeoutMs + 60_000;
      const { stages: answer, unclean } = await runners.run(containerId, job.requestId, runnerJob, guardMs);
      // A job turned down (a file it could not write) ran nothing: an answer, and the container stays sound.
      const { stages, unwritableFile } = splitRunnerResult(answer);
      const result = { language: job.language, version: job.version, ...stages };
      await store.record({ id: job.requestId, ownerId: input.ownerId, sessionId: input.sessionId, executor: 'docker', containerId, result });
      return { ...capForHistory(result, input.historyOutputCap), ...(unclean ? { retire: true } : {}), ...(unwritableFile ? { unwritableFile } : {}) };
    },

    /**
     * Leases another container from an existing pool (the `acquire` update, sent with the
     * worker's own client), for an execution whose first container was found dead.
     */
    async acquireReplacementContainer({ poolWorkflowId, request }: { poolWorkflowId: string; request: AcquireRequest }): Promise<Lease> {
      try {
        return await Context.current().client.workflow.getHandle(poolWorkflowId).executeUpdate(acquireUpdate, { args: [request] });
      } catch (err) {
        // The pool's refusal (PoolExhausted, after its own wait) is an answer, not a lost message: pass it on by name, unretried.
        if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) throw err.cause;
        throw err;
      }
    },

    /**
     * Gives a leased container back to its pool (the pool's `release` signal, sent with the
     * worker's own client). Idempotent: the pool ignores a lease it no longer has out, and a
     * pool that is gone has nothing to take back.
     */
    async releaseExecutionContainer({ poolWorkflowId, leaseId, retire, containerId }: { poolWorkflowId: string; leaseId: string; retire: boolean; containerId?: string }): Promise<void> {
      try {
        await Context.current().client.workflow.getHandle(poolWorkflowId).signal(releaseSignal, { leaseId, retire, containerId });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    },

    /** Removes this instance's execution containers that no pool knows (a crashed worker's). */
    async removeOrphanExecutionContainers({ pool: poolId, keep }: { pool: string; keep: string[] }): Promise<string[]> {
      const orphans = await listOrphans(poolId, keep);
      // One that will not go now is found again by the pool's next sweep.
      await Promise.all(orphans.map((id) => removeContainerIfPresent(docker, id).catch(() => undefined)));
      return orphans;
    },

    /**
     * The orphan sweep of a pool's new run: removes the containers no pool knows that are idle,
     * and returns those a job still runs in (an execution leased them from an earlier run), for
     * the pool to keep until that execution is over.
     */
    async sweepOrphanExecutionContainers({ pool: poolId, keep }: { pool: string; keep: string[] }): Promise<string[]> {
      const orphans = await listOrphans(poolId, keep);
      const inUse = await Promise.all(orphans.map(async (id) => {
        if (await runningAJob(id)) return id;
        await removeContainerIfPresent(docker, id).catch(() => undefined);
        return undefined;
      }));
      return inUse.filter((id): id is string => id !== undefined);
    },
  };

  async function listOrphans(poolId: string, keep: string[]): Promise<string[]> {
    const listed = await docker.listContainers({
      all: true,
      filters: { label: [`${managedLabel}=true`, `${instanceLabel}=${instance}`, `${kindLabel}=execution`, `${poolLabel}=${poolId}`] },
    });
    const known = new Set(keep);
    return listed.filter((c) => !known.has(c.Id) && !c.Names.some((n) => known.has(n.replace(/^\//, '')))).map((c) => c.Id);
  }

  /**
   * An idle container runs docker-init and the runner, nothing else; a job adds the runner's
   * child and the user's processes. When Docker cannot tell, the container counts as busy: it
   * is then removed at the lease TTL, never under a running job.
   */
  async function runningAJob(containerId: string): Promise<boolean> {
    const inspected = await ignoreNotFound(docker.getContainer(containerId).inspect());
    if (!inspected?.State.Running) return false;
    try {
      const { Processes } = (await docker.getContainer(containerId).top()) as { Processes?: unknown[] };
      return (Processes?.length ?? Infinity) > idleProcesses;
    } catch {
      return true;
    }
  }
}

/** docker-init and the runner. */
const idleProcesses = 2;

export type ExecutionActivities = ReturnType<typeof createExecutionActivities>;

interface RunInContainerInput {
  containerId: string;
  job: ExecutionJob;
  ownerId: string;
  sessionId?: string;
  historyOutputCap: number;
}
