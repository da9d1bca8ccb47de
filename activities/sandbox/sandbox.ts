import { log } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { ActivityDeps } from '..';
import { PassThrough } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { domainFailure } from '../../domain/shared/errors';
import {
  describeDeath,
  sandboxContainerName,
  sandboxExecOutputLimitBytes,
  type ContainerDeath,
  type SandboxEvent,
  type SandboxExecResult,
  type SandboxPlan,
  type StopReason,
} from '../../domain/sandbox/sandbox';
import { fitHostConfig } from '../shared/containerRuntime';
import { ensureImage, ignoreNotFound, instanceLabel, kindLabel, removeContainerIfPresent, sessionflowLabels, statusOf } from '../shared/docker';
import { heartbeating } from '../shared/heartbeat';
import { createSandboxStore } from './store';

export const chatIdLabel = 'org.sessionflow.chat-id';
const sandboxSessionLabel = 'org.sessionflow.sandbox-session';
const sandboxKind = 'sandbox';
const workingDir = '/workspace';
/** nobody:nogroup, present in every Debian image: sandbox code never runs as root. */
const sandboxUser = 65534;

/** Resource limits and writable area of every chat sandbox container (config). */
export interface ChatSandboxLimits {
  memoryBytes: number;
  nanoCpus: number;
  pids: number;
  fileSizeBytes: number;
  workspaceBytes: number;
  /** Size of /tmp, and of /dev/shm. */
  tmpBytes: number;
}

export function createSandboxActivities({ docker, pool, baseImage, instance, chatSandbox: limits, containerRuntime }: Pick<ActivityDeps, 'docker' | 'pool' | 'baseImage' | 'instance' | 'chatSandbox' | 'containerRuntime'>) {
  const store = createSandboxStore(pool);
  return {
    /**
     * Records the session, then makes (or finds) its container and starts it. The row comes
     * first so the orphan sweep never mistakes a container being created for an orphan; the
     * container name comes from the session id, so a retry after a crash finds the container
     * the lost attempt made instead of creating a second one. An owner at their limit is
     * refused before anything is written or made.
     */
    createSandboxContainer(sandbox: SandboxPlan): Promise<{ containerId: string }> {
      return heartbeating(async () => {
        const refusal = await store.recordCreating(sandbox);
        if (refusal) {
          throw domainFailure('SandboxQuotaExceeded', `you hold ${refusal.live} live sandboxes, the most allowed (${refusal.limit}); stop one or wait until one expires`, { ...refusal });
        }
        const containerId = await findOrCreateContainer(sandbox);
        await store.markRunning(sandbox.sessionId, containerId);
        return { containerId };
      });
    },

    /** Whether the sandbox's container still runs: undefined if so, else how it was found. */
    async probeSandboxContainer({ containerName }: { containerName: string }): Promise<ContainerDeath | undefined> {
      return deathOf(await ignoreNotFound(docker.getContainer(containerName).inspect()));
    },

    /** Removes the container (already gone is fine) and marks the session stopped. */
    stopSandboxContainer({ sessionId, containerName, reason }: { sessionId: string; containerName: string; reason: StopReason }): Promise<void> {
      return heartbeating(async () => {
        await removeContainerIfPresent(docker, containerName);
        await store.markStopped(sessionId, reason);
      });
    },

    /** The TTL passed: the read model shows it expired until it is stopped. */
    async markSandboxExpired({ sessionId }: { sessionId: string }): Promise<void> {
      await store.markExpired(sessionId);
    },

    /** One of the seed's events: a structured log line, and a row the api counts in /metrics. */
    async recordSandboxEvent(event: SandboxEvent): Promise<void> {
      const attrs = { chat_id: event.chatId, session_id: event.sessionId, container_id: event.containerId, ...(event.error ? { error: event.error } : {}) };
      if (event.error) log.error(event.event, attrs);
      else log.info(event.event, attrs);
      await store.recordEvent(event);
    },

    /** The sweep's snapshot: every live session whose expiry is now or earlier. */
    async listExpiredSandboxes({ ownerId }: { ownerId?: string }): Promise<{ chatId: string; sessionId: string }[]> {
      return store.expired(ownerId);
    },

    /**
     * Removes this instance's sandbox containers that no live session claims (a workflow that
     * was terminated, a row stopped while its container survived). Other instances' containers
     * on a shared engine are never touched.
     */
    async removeOrphanSandboxContainers(): Promise<number> {
      const containers = await docker.listContainers({ all: true, filters: { label: [`${instanceLabel}=${instance}`, `${kindLabel}=${sandboxKind}`] } });
      const sessionIds = containers.map((c) => c.Labels[sandboxSessionLabel]).filter((id): id is string => !!id);
      if (sessionIds.length === 0) return 0;
      const live = await store.live(sessionIds);
      let removed = 0;
      for (const container of containers) {
        const sessionId = container.Labels[sandboxSessionLabel];
        if (sessionId && live.has(sessionId)) continue;
        await removeContainerIfPresent(docker, container.Id);
        removed++;
      }
      return removed;
    },

    /** Runs argv in the sandbox through the Docker exec API, with stdin, a timeout and output caps. */
    execInSandbox({ containerName, command, stdin, timeoutMs }: { containerName: string; command: string[]; stdin?: string; timeoutMs: number }): Promise<SandboxExecResult> {
      return heartbeating(() => runExec(docker.getContainer(containerName), command, stdin ?? '', timeoutMs));
    },
  };

  async function findOrCreateContainer(sandbox: SandboxPlan): Promise<string> {
    const name = sandboxContainerName(sandbox.sessionId);
    let container = docker.getContainer(name);
    const found = await ignoreNotFound(container.inspect());
    if (found) {
      if (!found.State.Running) await container.start();
      return found.Id;
    }
    await ensureImage(docker, baseImage);
    try {
      container = await docker.createContainer({
        name,
        Image: baseImage,
        // Kept alive by a long sleep; code arrives through exec.
        Cmd: ['sleep', 'infinity'],
        WorkingDir: workingDir,
        Labels: sessionflowLabels(instance, sandboxKind, { [chatIdLabel]: sandbox.chatId, [sandboxSessionLabel]: sandbox.sessionId }),
        NetworkDisabled: true,
        User: `${sandboxUser}:${sandboxUser}`,
        Env: [`HOME=${workingDir}`],
        // Untrusted code: no network, no root, no capabilities, nothing gained by exec'ing a
        // setuid binary; bounded memory (no swap), CPU, processes and file size. The root is
        // read-only and every writable place is a sized tmpfs, charged to the container's own
        // memory: a sandbox that writes without end fills its own quota, never the engine's disk.
        HostConfig: fitHostConfig(await containerRuntime(), {
          NetworkMode: 'none',
          Memory: limits.memoryBytes,
          MemorySwap: limits.memoryBytes,
          NanoCpus: limits.nanoCpus,
          PidsLimit: limits.pids,
          Ulimits: [{ Name: 'fsize', Soft: limits.fileSizeBytes, Hard: limits.fileSizeBytes }],
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          ReadonlyRootfs: true,
          Tmpfs: {
            [workingDir]: `rw,exec,nosuid,nodev,size=${limits.workspaceBytes},uid=${sandboxUser},gid=${sandboxUser},mode=0755`,
            '/tmp': `rw,exec,nosuid,nodev,size=${limits.tmpBytes},mode=1777`,
          },
          ShmSize: limits.tmpBytes,
          // What the sandbox writes to its main process's stdout would otherwise fill the engine's log files.
          LogConfig: { Type: 'none', Config: {} },
          // docker-init reaps what user programs orphan, so zombies never eat the pids limit.
          Init: true,
        }),
      });
    } catch (err) {
      // Two attempts raced (a retry overlapping a slow first try): the other one made it.
      if (statusOf(err) !== 409) throw err;
      container = docker.getContainer(name);
    }
    await container.start().catch((err: unknown) => {
      if (statusOf(err) !== 304) throw err; // 304: already started
    });
    return (await container.inspect()).Id;
  }
}

export type SandboxActivities = ReturnType<typeof createSandboxActivities>;

/** Keeps at most `limit` bytes of a stream and says whether it had to cut. */
class CappedSink extends PassThrough {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {
    super();
    this.on('data', (chunk: Buffer) => {
      const room = this.limit - this.size;
      if (chunk.length > room) this.truncated = true;
      if (room > 0) {
        this.chunks.push(chunk.subarray(0, room));
        this.size += Math.min(room, chunk.length);
      }
    });
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** undefined for a running container; else how it was found (Docker's state, or gone). */
function deathOf(info: Docker.ContainerInspectInfo | undefined): ContainerDeath | undefined {
  if (!info) return { state: 'gone' };
  if (info.State.Running) return undefined;
  return { state: info.State.Status, exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled };
}

/** What runsc answers for an exec whose sandbox went away under it. */
const runscLostExec = /waiting on pid \d+.*urpc method .* failed/i;

/** The container's death if it is dead now or dies within `waitMs`; undefined while it runs on. */
async function deathWithin(container: Docker.Container, waitMs: number): Promise<ContainerDeath | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const death = deathOf(await ignoreNotFound(container.inspect()));
    if (death || Date.now() >= deadline) return death;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The sandbox's container died: a named failure the workflow acts on and the api answers 409. */
function sandboxLost(death: ContainerDeath) {
  return domainFailure('SandboxLost', `the sandbox is lost: ${describeDeath(death)}; its files are gone. Ensure a new sandbox (PUT) to go on`, { state: 'LOST', container: death });
}

async function runExec(container: Docker.Container, command: string[], stdin: string, timeoutMs: number): Promise<SandboxExecResult> {
  const death = deathOf(await ignoreNotFound(container.inspect()));
  if (death) throw sandboxLost(death);
  // 409 or 404: it stopped, or was removed, since the look above.
  const lostOrRethrow = async (err: unknown): Promise<never> => {
    const died = statusOf(err) === 409 || statusOf(err) === 404 ? deathOf(await ignoreNotFound(container.inspect())) : undefined;
    throw died ? sandboxLost(died) : err;
  };
  // coreutils' timeout kills the command inside the container; the timer below is a backstop
  // for a daemon that stops answering.
  const exec = await container
    .exec({
      Cmd: ['timeout', '-s', 'KILL', (timeoutMs / 1000).toFixed(3), ...command],
      AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, WorkingDir: workingDir,
    })
    .catch(lostOrRethrow);
  const started = performance.now();
  const stream = await exec.start({ hijack: true, stdin: true });
  const stdout = new CappedSink(sandboxExecOutputLimitBytes);
  const stderr = new CappedSink(sandboxExecOutputLimitBytes);
  container.modem.demuxStream(stream, stdout, stderr);
  const finished = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  stream.end(stdin);
  let backstop: NodeJS.Timeout | undefined;
  await Promise.race([
    finished,
    new Promise<void>((resolve) => {
      backstop = setTimeout(() => {
        stream.destroy();
        resolve();
      }, timeoutMs + 5000);
    }),
  ]).finally(() => clearTimeout(backstop));
  const durationMs = Math.round(performance.now() - started);
  // Docker forgets the exec of a container that died meanwhile (under gVisor, programs that
  // exhaust its memory end the whole sandbox): 404.
  const { ExitCode } = await exec.inspect().catch(lostOrRethrow);
  const exitCode = ExitCode ?? -1;
  // A program killed from outside may have taken the whole sandbox with it. Under gVisor the exec
  // can even be answered first, by runsc itself ("waiting on PID … urpc … failed: EOF", 128),
  // while the container's death follows in a moment: then it is waited for.
  if (exitCode >= 128 || exitCode === -1) {
    const died = await deathWithin(container, runscLostExec.test(stderr.text()) ? 10_000 : 0);
    if (died) throw sandboxLost(died);
  }
  return {
    stdout: stdout.text(),
    stderr: stderr.text(),
    exitCode,
    // timeout(1) with KILL exits 137; only the clock tells a timeout from an OOM kill.
    timedOut: (exitCode === 137 || exitCode === -1) && durationMs >= timeoutMs,
    stdoutTruncated: stdout.truncated,
    stderrTruncated: stderr.truncated,
    durationMs,
  };
}
