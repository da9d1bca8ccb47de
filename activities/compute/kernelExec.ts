import { Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import { once } from 'node:events';
import type { Duplex, Readable } from 'node:stream';
import { finished, Writable } from 'node:stream';
import { domainFailure } from '../../domain/shared/errors';
import { statusOf } from '../shared/docker';
import { kernelUser } from './kernelInit';

export interface KernelExecOptions {
  cmd: string[];
  /** Fed to the process's stdin, which is then closed; without it the process gets no stdin. */
  stdin?: string | Buffer | Readable;
  /** Takes stdout as it comes: a slow one slows the process down (backpressure); one that fails ends the exec with its error. */
  stdout: Writable;
  /** Bytes of stderr kept for the answer. */
  stderrBytes?: number;
  /** Past this the exec is given up on (its stream closed): outcome 'late'. */
  waitMs: number;
}

export interface KernelExecResult {
  outcome: 'ended' | 'late';
  stderr: string;
  /** The process's exit code, once the engine has it (null when it never says). */
  exitCode(): Promise<number | null>;
}

/**
 * One `docker exec` in a kernel as `work`, heartbeating every 2 s while it runs: stdin fed from
 * a string or a stream, stdout handed on with backpressure (a download of hundreds of megabytes
 * is never held in memory), stderr kept up to a bound. A cancelled activity closes the exec's
 * stream and fails with the cancellation. A kernel that is gone or stopped is KernelFailed.
 */
export async function execInKernel(docker: Docker, containerId: string, options: KernelExecOptions): Promise<KernelExecResult> {
  const container = docker.getContainer(containerId);
  let exec: Docker.Exec;
  try {
    exec = await container.exec({
      Cmd: options.cmd, User: `${kernelUser.uid}:${kernelUser.gid}`,
      AttachStdin: options.stdin !== undefined, AttachStdout: true, AttachStderr: true, Tty: false,
    });
  } catch (err) {
    if (statusOf(err) === 404 || statusOf(err) === 409) throw domainFailure('KernelFailed', `the kernel's container ${containerId} is gone or stopped`, { container_id: containerId });
    throw err;
  }
  const stream = (await exec.start({ hijack: true, stdin: options.stdin !== undefined })) as Duplex;
  const stderr = new CappedBuffer(options.stderrBytes ?? 4096);
  const output = new ExecOutput(options.stdout, stderr);
  const activity = Context.current();
  const beat = setInterval(() => activity.heartbeat(), 2000);
  let backstop: NodeJS.Timeout | undefined;
  try {
    const ended = new Promise<'ended'>((resolve, reject) => {
      output.on('finish', () => resolve('ended'));
      output.on('error', reject);
      stream.on('error', reject);
      // The engine closes the stream once the process has ended and its output is read; a
      // close before the end of the output is a broken connection, not an answer.
      stream.on('close', () => {
        if (stream.readableEnded) {
          if (!output.writableEnded) output.end();
        } else reject(new Error('the exec\'s stream closed before the end of its output'));
      });
    });
    stream.pipe(output);
    feed(stream, options.stdin, (err) => stream.destroy(err));
    const outcome = await Promise.race([
      ended,
      new Promise<'late'>((resolve) => {
        backstop = setTimeout(() => resolve('late'), options.waitMs);
      }),
      activity.cancelled,
    ]);
    if (outcome === 'late') stream.destroy();
    return { outcome, stderr: stderr.text(), exitCode: () => exitCodeOf(exec) };
  } catch (err) {
    stream.destroy();
    throw err;
  } finally {
    clearInterval(beat);
    clearTimeout(backstop);
  }
}

function feed(stream: Duplex, stdin: KernelExecOptions['stdin'], fail: (err: Error) => void): void {
  if (stdin === undefined) return;
  if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) {
    stream.end(stdin);
    return;
  }
  // A source that fails (the staging rows could not be read) ends the exec: the kernel sees a cut stream and writes nothing.
  stdin.on('error', fail);
  stdin.pipe(stream);
}

/** The engine may answer an inspect a moment before it has recorded the exit: ask again for a little while. */
async function exitCodeOf(exec: Docker.Exec): Promise<number | null> {
  for (let attempt = 0; ; attempt++) {
    const { Running, ExitCode } = await exec.inspect();
    if (!Running || attempt >= 40) return ExitCode ?? null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Splits the exec's multiplexed stream (frames of an 8-byte header — stream, size — and the
 * bytes) into stdout and stderr. It takes the next chunk only once stdout has taken the last
 * one, so backpressure reaches the kernel's process; ending it ends stdout and waits for it.
 */
class ExecOutput extends Writable {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly stdout: Writable, private readonly stderr: Writable) {
    super();
    // stdout failing (a download past its cap, staging rows that cannot be written) fails the exec.
    stdout.on('error', (err) => this.destroy(err));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.frames().then(() => done(), done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.stdout.end();
    finished(this.stdout, (err) => done(err ?? null));
  }

  private async frames(): Promise<void> {
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) return;
      const target = this.pending[0] === 2 ? this.stderr : this.stdout;
      const payload = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      if (!target.write(payload)) await once(target, 'drain');
    }
  }
}

/** Keeps the first `limit` bytes written to it (synchronously: all is there once the exec's stream ends). */
export class CappedBuffer extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.size < this.limit) {
      const part = chunk.subarray(0, this.limit - this.size);
      this.chunks.push(part);
      this.size += part.length;
    }
    done();
  }

  text(): string {
    return this.buffer().toString('utf8');
  }

  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
