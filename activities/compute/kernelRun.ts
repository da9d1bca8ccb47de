import { Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import { Writable } from 'node:stream';
import { kernelOutputLimitBytes, type ExecuteRequest, type KernelCompletion, type KernelRunResult } from '../../domain/compute/compute';
import { domainFailure } from '../../domain/shared/errors';
import { statusOf } from '../shared/docker';
import { kernelRunnerPath, kernelUser } from './kernelInit';

/** The runner interrupts a run at its timeout and again each second for a minute; past that the node stops waiting. */
const runnerGraceMs = 70_000;
/** Interrupt waits up to 5 s in the runner; complete answers at once. */
const quickCallMs = 20_000;
/** input and continue without a wait: until the run's next answer, which its timeout bounds (at most an hour). */
const longestWaitMs = 3_600_000;

type RunnerReply = Record<string, unknown> & { error?: string; message?: string };

/**
 * Executes, interrupts and completes in a kernel through its runner (kernelRunner.ts), over one
 * long-lived `docker exec` of the runner's relay per kernel (RunnerChannels): a request costs a
 * line each way, not an exec. The runner keeps the namespace and remembers runs by id, so a
 * retried execute joins or repeats the first attempt's answer and never runs the code twice.
 */
export function createKernelRunActivities(docker: Docker) {
  const channels = new RunnerChannels(docker);

  return {
    /**
     * Starts a run (query or batch), feeds a line to one waiting for input, or asks one for what
     * comes next, and answers with its next segment: finished, waiting-input, or continued when
     * `waitMs` ends first. Past `timeoutMs` the runner interrupts the run: ExecutionTimeout, and
     * the kernel stays usable. A run going on under another id: InvalidSessionState.
     */
    async executeInKernel({ containerId, ...request }: ExecuteRequest & { containerId: string }): Promise<KernelRunResult> {
      const mode = request.mode ?? 'query';
      // Without a wait the runner answers when the run does: its timeout (time waiting for input aside) bounds a start.
      const waitMs = request.waitMs;
      const backstopMs = (waitMs ?? (mode === 'input' || mode === 'continue' ? longestWaitMs : request.timeoutMs)) + runnerGraceMs;
      const call: Record<string, unknown> = mode === 'input' || mode === 'continue'
        ? { action: mode, run_id: request.runId, text: request.code, request_key: request.requestId ?? request.runId, wait_ms: waitMs ?? null }
        : {
            action: 'execute', mode, run_id: request.runId, code: request.code, build: request.build ?? null, exec: request.exec ?? null,
            stdin: request.stdin ?? null, timeout_ms: request.timeoutMs, wait_ms: waitMs ?? null, output_limit: kernelOutputLimitBytes,
          };
      const reply = await channels.call(containerId, call, backstopMs);
      if (reply.error === 'busy') {
        throw domainFailure('InvalidSessionState', `run ${String(reply.running)} is still running in the kernel: interrupt it or wait for it`, { running_run_id: reply.running });
      }
      if (reply.error === 'unknown-run') throw domainFailure('RunNotFound', `${reply.message ?? ''} (runs are forgotten when the kernel restarts)`, { run_id: request.runId });
      if (reply.error === 'not-waiting') throw domainFailure('RunNotWaitingInput', reply.message ?? 'the run is not waiting for input', { run_id: request.runId });
      const result: KernelRunResult = {
        runId: request.runId, status: reply.status === 'waiting-input' || reply.status === 'continued' ? reply.status : 'finished',
        exitCode: typeof reply.exit_code === 'number' ? reply.exit_code : null, stdout: String(reply.stdout ?? ''), stderr: String(reply.stderr ?? ''),
        result: reply.result ?? null, resultRepr: typeof reply.result_repr === 'string' ? reply.result_repr : null,
        truncated: reply.truncated === true, interrupted: reply.interrupted === true,
      };
      if (reply.timed_out === true) {
        const seconds = request.timeoutMs / 1000;
        throw domainFailure('ExecutionTimeout', `run ${request.runId} did not finish within ${seconds} s and was interrupted; the kernel stays usable`, {
          run_id: request.runId, timeout: seconds, stdout: result.stdout, stderr: result.stderr, truncated: result.truncated,
        });
      }
      return result;
    },

    /** KeyboardInterrupt in the run, if it is the one going on; a finished or unknown run is done already. */
    async interruptKernelRun({ containerId, runId }: { containerId: string; runId: string }): Promise<{ runId: string; running: boolean }> {
      const reply = await channels.call(containerId, { action: 'interrupt', run_id: runId }, quickCallMs);
      return { runId, running: reply.running === true };
    },

    /** Completion candidates at `position` (default: the end) from the kernel's own interpreter and namespace. */
    async completeInKernel({ containerId, code, position }: { containerId: string; code: string; position?: number }): Promise<KernelCompletion> {
      const reply = await channels.call(containerId, { action: 'complete', code, position: position ?? null }, quickCallMs);
      return { candidates: Array.isArray(reply.candidates) ? reply.candidates.map(String) : [] };
    },
  };
}

export type KernelRunActivities = ReturnType<typeof createKernelRunActivities>;

/**
 * The node's open relays, one per kernel, made on first use. A relay that ends (the kernel
 * restarted or was removed, the runner file is missing) fails what waits on it and is made
 * again by the next call; a failed call is a plain error the activity's retry covers, unless
 * the kernel is gone or has no runner (named).
 */
class RunnerChannels {
  private readonly open = new Map<string, Promise<RunnerChannel>>();

  constructor(private readonly docker: Docker) {}

  /**
   * One request and its reply, heartbeating while it waits (a run may take its whole timeout).
   * A cancelled activity stops waiting; the run itself goes on until it ends or is interrupted.
   */
  async call(containerId: string, request: Record<string, unknown>, waitMs: number): Promise<RunnerReply> {
    const channel = await this.channel(containerId);
    const activity = Context.current();
    const beat = setInterval(() => activity.heartbeat(), 2000);
    try {
      const reply = await channel.ask(request, waitMs, activity.cancelled);
      // Starting, or being started again after it died: worth another attempt.
      if (reply.error === 'unavailable') throw new Error(reply.message ?? 'the kernel runner does not answer');
      if (reply.error && !['busy', 'unknown-run', 'not-waiting'].includes(reply.error)) {
        throw domainFailure('KernelFailed', `the kernel's runner refused the request: ${reply.message ?? reply.error}`);
      }
      return reply;
    } catch (err) {
      if (err instanceof ChannelTimeout) {
        throw domainFailure('ExecutionTimeout', `the kernel's runner did not answer within ${Math.round(waitMs / 1000)} s (code that ignores KeyboardInterrupt?)`, { run_id: request.run_id });
      }
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  private channel(containerId: string): Promise<RunnerChannel> {
    let channel = this.open.get(containerId);
    if (!channel) {
      channel = RunnerChannel.open(this.docker, containerId, () => this.open.delete(containerId));
      this.open.set(containerId, channel);
      // A relay that could not be made is not kept: the next call tries again.
      channel.catch(() => this.open.delete(containerId));
    }
    return channel;
  }
}

class ChannelTimeout extends Error {}

/** A relay that says nothing this long while a request waits is asked whether it lives; */
const quietBeforeProbeMs = 2000;
/** one that does not answer that probe this long is dead (an exec that never started, a kernel restarted under it). */
const probeAnswerMs = 6000;

interface Waiting {
  resolve(reply: RunnerReply): void;
  reject(err: Error): void;
}

/** One `docker exec` of the runner's relay: request lines in, reply lines out, matched by id. */
class RunnerChannel {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private ended?: Error;
  private lastHeardAt = Date.now();
  private probeSentAt?: number;
  private confirming = false;
  private readonly watch: NodeJS.Timeout;

  /**
   * A relay whose exec never started or whose kernel restarted may leave its stream open and
   * silent rather than ended: while requests wait, a quiet relay is probed (the relay answers
   * `ping` itself; an older one forwards it and the runner refuses it, an answer all the same),
   * and one that does not answer is failed, so the next call opens a new one.
   */
  private constructor(private readonly stream: Duplex, private readonly onDead: () => void, private readonly isPaused: () => Promise<boolean>) {
    this.watch = setInterval(() => this.checkLiveness(), 1000);
    this.watch.unref();
  }

  static async open(docker: Docker, containerId: string, onEnd: () => void): Promise<RunnerChannel> {
    const isPaused = async () => (await docker.getContainer(containerId).inspect().catch(() => undefined))?.State.Paused === true;
    let exec: Docker.Exec;
    try {
      exec = await docker.getContainer(containerId).exec({
        // Isolated and without site: the relay needs only the standard library.
        Cmd: ['python3', '-I', '-S', kernelRunnerPath, 'relay'], User: `${kernelUser.uid}:${kernelUser.gid}`,
        AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false,
      });
    } catch (err) {
      // Paused for the moment of a commit: the retry comes when it runs again.
      if (statusOf(err) === 409 && await isPaused()) throw new Error(`the kernel's container ${containerId} is paused (a commit going on?)`);
      if (statusOf(err) === 404 || statusOf(err) === 409) throw domainFailure('KernelFailed', `the kernel's container ${containerId} is gone or stopped`, { container_id: containerId });
      throw err;
    }
    const stream = (await exec.start({ hijack: true, stdin: true })) as Duplex;
    let ended = false;
    const channel = new RunnerChannel(stream, () => {
      stream.destroy();
      end();
    }, isPaused);
    const stderr: Buffer[] = [];
    docker.modem.demuxStream(stream, new LineSplitter((line) => channel.onLine(line)), new Writable({
      write(chunk: Buffer, _encoding, done) {
        if (stderr.length < 16) stderr.push(chunk);
        done();
      },
    }));
    function end() {
      if (ended) return;
      ended = true;
      onEnd();
      const why = Buffer.concat(stderr).toString('utf8').trim();
      channel.fail(/No such file|can't open file/i.test(why)
        ? domainFailure('KernelFailed', 'this kernel has no runner (it was made before kernels had one): restart the session', { container_id: containerId })
        : new Error(`the kernel's runner relay ended${why ? `: ${why.slice(0, 300)}` : ''}`));
    }
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
    return channel;
  }

  ask(request: Record<string, unknown>, waitMs: number, cancelled: Promise<never>): Promise<RunnerReply> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    return new Promise<RunnerReply>((resolve, reject) => {
      const backstop = setTimeout(() => settle(() => reject(new ChannelTimeout())), waitMs);
      const settle = (then: () => void) => {
        if (!this.waiting.delete(id)) return;
        clearTimeout(backstop);
        then();
      };
      this.waiting.set(id, { resolve: (reply) => settle(() => resolve(reply)), reject: (err) => settle(() => reject(err)) });
      cancelled.catch((err: unknown) => settle(() => reject(err instanceof Error ? err : new Error('cancelled'))));
      this.stream.write(`${JSON.stringify({ id, request })}\n`);
    });
  }

  private checkLiveness(): void {
    if (this.ended) return;
    const now = Date.now();
    if (this.probeSentAt !== undefined) {
      if (now - this.probeSentAt > probeAnswerMs && !this.confirming) {
        // A kernel paused for a commit answers once it runs again: only a relay of a running kernel is given up.
        this.confirming = true;
        void this.isPaused().then((paused) => {
          this.confirming = false;
          if (this.ended) return;
          if (paused) {
            this.probeSentAt = Date.now();
            return;
          }
          this.fail(new Error(`the kernel's runner relay stopped answering (no answer to a probe in ${probeAnswerMs / 1000} s): a new one is opened`));
          this.onDead();
        });
      }
      return;
    }
    if (this.waiting.size === 0 || now - this.lastHeardAt < quietBeforeProbeMs) return;
    this.probeSentAt = now;
    this.stream.write(`${JSON.stringify({ id: 0, request: { action: 'ping' } })}\n`);
  }

  private onLine(line: string): void {
    this.lastHeardAt = Date.now();
    this.probeSentAt = undefined;
    let message: { id?: number; reply?: RunnerReply };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      return;
    }
    if (typeof message.id === 'number' && message.reply) this.waiting.get(message.id)?.resolve(message.reply);
  }

  private fail(err: Error): void {
    clearInterval(this.watch);
    this.ended ??= err;
    for (const waiting of [...this.waiting.values()]) waiting.reject(err);
  }
}

/** Calls back with each complete line written to it (the relay's replies); a broken line beyond the cap is dropped. */
class LineSplitter extends Writable {
  private pending = '';
  /** A reply is capped by output_limit in the runner: this only bounds a broken one. */
  private static readonly maxLine = 4 * kernelOutputLimitBytes + 64 * 1024;

  constructor(private readonly onLine: (line: string) => void) {
    super({ decodeStrings: true });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    // The relay writes JSON with ASCII escapes: a chunk never splits a character.
    this.pending += chunk.toString('latin1');
    let end: number;
    while ((end = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, end);
      this.pending = this.pending.slice(end + 1);
      if (line.trim()) this.onLine(line);
    }
    if (this.pending.length > 4 * LineSplitter.maxLine) this.pending = '';
    done();
  }
}
