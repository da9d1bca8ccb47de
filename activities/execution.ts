import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import type { ExecutionJob, ExecutionResult } from '../domain/execution';
import { domainFailure } from '../domain/errors';
import { ensureImage, instanceLabel, kindLabel, managedLabel, sessionflowLabels, statusOf } from './docker';
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
  instance: string;
  sandbox: SandboxLimits;
}

export const runtimeLabel = 'org.sessionflow.runtime';
const sandboxUser = '65534:65534';
/** Stateless runs get /work/<requestId>; a session keeps /work/session across executions. */
const sessionWorkDir = '/work/session';

export function createExecutionActivities({ docker, instance, sandbox }: ExecutionActivityDeps) {
  return {
    /**
     * A warm container: no network, read-only root, tmpfs work dirs, memory/CPU/pids/file-size
     * limits, every capability dropped. It only sleeps; executions arrive by `docker exec` as
     * nobody. Named by the pool's id for it, so a retried create finds the first one.
     */
    async createExecutionContainer({ name, image, runtime }: { name: string; image: string; runtime: string }): Promise<string> {
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
        Labels: sessionflowLabels(instance, 'execution', { [runtimeLabel]: runtime }),
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

    /** Runs one job in a leased container through the runner, as the sandbox user. */
    async runInContainer({ containerId, job }: { containerId: string; job: ExecutionJob }): Promise<ExecutionResult> {
      const runnerJob = toRunnerJob(job, {
        workDir: job.sessionKey ? sessionWorkDir : `/work/${job.requestId}`,
        keepWorkDir: Boolean(job.sessionKey),
        killAll: true,
        fileSizeLimit: sandbox.fileSizeBytes,
        // The container's pids limit bounds processes; RLIMIT_NPROC would count the host's nobody too.
        processLimit: 0,
      });
      const stages = await execRunner(docker, containerId, JSON.stringify(runnerJob));
      return { language: job.language, version: job.version, ...stages };
    },

    /** Removes this instance's execution containers that no pool knows (a crashed worker's). */
    async removeOrphanExecutionContainers({ runtime, keep }: { runtime: string; keep: string[] }): Promise<string[]> {
      const listed = await docker.listContainers({
        all: true,
        filters: { label: [`${managedLabel}=true`, `${instanceLabel}=${instance}`, `${kindLabel}=execution`, `${runtimeLabel}=${runtime}`] },
      });
      const known = new Set(keep);
      const orphans = listed.filter((c) => !known.has(c.Id) && !c.Names.some((n) => known.has(n.replace(/^\//, ''))));
      await Promise.all(orphans.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      return orphans.map((c) => c.Id);
    },
  };
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
