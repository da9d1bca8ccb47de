import { log } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { ActivityDeps } from '..';
import { PassThrough } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { domainFailure } from '../../domain/shared/errors';
import {
  sandboxContainerName,
  sandboxExecOutputLimitBytes,
  type SandboxEvent,
  type SandboxExecResult,
  type SandboxRecord,
  type StopReason,
} from '../../domain/sandbox/sandbox';
import { ensureImage, ignoreNotFound, instanceLabel, kindLabel, removeContainerIfPresent, sessionflowLabels, statusOf } from '../shared/docker';
import { createSandboxStore } from './store';

export const chatIdLabel = 'org.sessionflow.chat-id';
const sandboxSessionLabel = 'org.sessionflow.sandbox-session';
const sandboxKind = 'sandbox';
const workingDir = '/workspace';

// A sandbox runs untrusted code: no network, bounded memory, CPU and process count.
const sandboxLimits = { Memory: 256 * 1024 * 1024, NanoCpus: 1_000_000_000, PidsLimit: 128, NetworkMode: 'none' };

export function createSandboxActivities({ docker, pool, baseImage, instance }: Pick<ActivityDeps, 'docker' | 'pool' | 'baseImage' | 'instance'>) {
  const store = createSandboxStore(pool);
  return {
    /**
     * Records the session, then makes (or finds) its container and starts it. The row comes
     * first so the orphan sweep never mistakes a container being created for an orphan; the
     * container name comes from the session id, so a retry after a crash finds the container
     * the lost attempt made instead of creating a second one.
     */
    async createSandboxContainer(sandbox: Omit<SandboxRecord, 'containerId' | 'status'>): Promise<{ containerId: string }> {
      await store.recordCreating(sandbox);
      const containerId = await findOrCreateContainer(sandbox);
      await store.markRunning(sandbox.sessionId, containerId);
      return { containerId };
    },

    /** Removes the container (already gone is fine) and marks the session stopped. */
    async stopSandboxContainer({ sessionId, containerName, reason }: { sessionId: string; containerName: string; reason: StopReason }): Promise<void> {
      await removeContainerIfPresent(docker, containerName);
      await store.markStopped(sessionId, reason);
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
    async execInSandbox({ containerName, command, stdin, timeoutMs }: { containerName: string; command: string[]; stdin?: string; timeoutMs: number }): Promise<SandboxExecResult> {
      return runExec(docker.getContainer(containerName), command, stdin ?? '', timeoutMs);
    },
  };

  async function findOrCreateContainer(sandbox: Omit<SandboxRecord, 'containerId' | 'status'>): Promise<string> {
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
        HostConfig: { ...sandboxLimits, Init: true },
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

async function runExec(container: Docker.Container, command: string[], stdin: string, timeoutMs: number): Promise<SandboxExecResult> {
  if (!(await ignoreNotFound(container.inspect()))) throw domainFailure('InvalidSessionState', 'the sandbox container is gone', { state: 'STOPPED' });
  // coreutils' timeout kills the command inside the container; the timer below is a backstop
  // for a daemon that stops answering.
  const exec = await container.exec({
    Cmd: ['timeout', '-s', 'KILL', (timeoutMs / 1000).toFixed(3), ...command],
    AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, WorkingDir: workingDir,
  });
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
  const { ExitCode } = await exec.inspect();
  const exitCode = ExitCode ?? -1;
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
