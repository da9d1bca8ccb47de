import type Docker from 'dockerode';
import { PassThrough, type Duplex } from 'node:stream';
import { domainFailure } from '../../domain/shared/errors';
import { statusOf } from '../shared/docker';
import { runnerDigest, runnerLabel, type RunnerJob, type RunnerResult } from './executionRunner';

interface RunnerReply {
  id: string;
  /** The runner has the job and is about to run it. */
  accepted?: boolean;
  result?: RunnerResult;
  error?: string;
  /** The runner could not empty the container's writable areas after the job: retire it. */
  unclean?: boolean;
}

/** A job's result, and whether the container may serve anyone again. */
export interface RunnerOutcome {
  stages: RunnerResult;
  unclean: boolean;
}

interface Pending {
  /** The runner acknowledged the job: user code may have run. */
  accepted: boolean;
  resolve(outcome: RunnerOutcome): void;
  reject(err: unknown): void;
}

/** One attached stream to a container's runner (the container's main process). */
interface Link {
  stream: Duplex;
  pending: Map<string, Pending>;
}

/**
 * The stdin/stdout of every execution container's long-lived runner, attached once per process
 * and kept: a job is one line written, its result one line read (matched by job id, since
 * several processes may be attached to one container). Nothing is started per execution.
 */
export class RunnerLinks {
  private readonly links = new Map<string, Promise<Link>>();

  constructor(private readonly docker: Docker) {}

  /**
   * Sends a job to the container's runner and waits for its result. `guardMs` only catches a
   * runner that never answers; the job's own deadlines end user code long before.
   */
  async run(containerId: string, jobId: string, job: RunnerJob, guardMs: number): Promise<RunnerOutcome> {
    const link = await this.link(containerId);
    return new Promise<RunnerOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        link.pending.delete(jobId);
        reject(domainFailure('ExecutionFailed', `the runner in execution container ${containerId.slice(0, 12)} did not answer within ${guardMs} ms`, { containerId }));
      }, guardMs);
      const settle = <T>(fn: (value: T) => void) => (value: T) => {
        clearTimeout(timer);
        link.pending.delete(jobId);
        fn(value);
      };
      link.pending.set(jobId, { accepted: false, resolve: settle(resolve), reject: settle(reject) });
      link.stream.write(`${JSON.stringify({ id: jobId, job })}\n`);
    });
  }

  private link(containerId: string): Promise<Link> {
    let link = this.links.get(containerId);
    if (!link) {
      const attached = this.attach(containerId, () => {
        if (this.links.get(containerId) === attached) this.links.delete(containerId);
      });
      this.links.set(containerId, attached);
      link = attached;
    }
    return link;
  }

  private async attach(containerId: string, forget: () => void): Promise<Link> {
    let stream: Duplex;
    const container = this.docker.getContainer(containerId);
    try {
      stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
      // Docker accepts an attach to a stopped container and then never answers nor ends it;
      // once attached to a running one, its end ends the stream. A container made before the
      // runner (no open stdin) would never answer either, and one made with another runner
      // speaks another protocol: all are lost to the pool, which replaces them.
      const { State, Config } = await container.inspect();
      if (!State.Running || !Config.OpenStdin || Config.Labels?.[runnerLabel] !== runnerDigest) {
        stream.destroy();
        throw containerLost(containerId, false);
      }
    } catch (err) {
      forget();
      if (statusOf(err) === 404 || statusOf(err) === 409) throw containerLost(containerId, false);
      throw err;
    }
    const link: Link = { stream, pending: new Map() };
    const stdout = new PassThrough();
    // The runner's stderr carries only its own faults; the replies say what a job needs.
    this.docker.modem.demuxStream(stream, stdout, new PassThrough().resume());
    let buffered = '';
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        deliver(link, line);
      }
    });
    const lost = () => {
      forget();
      for (const pending of link.pending.values()) pending.reject(containerLost(containerId, pending.accepted));
    };
    stream.on('end', lost);
    stream.on('close', lost);
    stream.on('error', lost);
    return link;
  }
}

function deliver(link: Link, line: string): void {
  let reply: RunnerReply;
  try {
    reply = JSON.parse(line) as RunnerReply;
  } catch {
    return;
  }
  const pending = link.pending.get(reply.id);
  if (!pending) return; // another process's job
  if (reply.accepted) pending.accepted = true;
  else if (reply.result) pending.resolve({ stages: reply.result, unclean: reply.unclean === true });
  else pending.reject(domainFailure('ExecutionFailed', `the runner could not carry out the job: ${(reply.error ?? 'no reason given').slice(-300)}`, { runnerError: reply.error }));
}

/** `duringRun: false` — the job never reached the container, so another container may take it. */
function containerLost(containerId: string, duringRun: boolean): Error {
  return domainFailure('ContainerLost', `execution container ${containerId.slice(0, 12)} is gone`, { containerId, duringRun });
}
