import { createHash } from 'node:crypto';
import { Client, type ClientChannel } from 'ssh2';
import { checkHostKey, hostKeyCheck, type HostKeyTrust, type PresentedHostKey } from './hostKeys';

/** Where and as whom to run commands, and which host key the other end must present. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string;
  hostKey: HostKeyTrust;
}

export interface ExecResult {
  /** The remote exit code; -1 when the command died of a signal or the channel closed without one. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Bytes for the command's stdin (closed afterwards). */
  stdin?: string | Buffer;
  timeoutMs?: number;
  /** Each stdout chunk as it arrives (progress reporting). */
  onStdout?: (chunk: string) => void;
}

export class SshTimeoutError extends Error {
  override name = 'SshTimeoutError';
}

/**
 * One SSH connection per boot server, reused across commands: a session start runs a dozen
 * commands, and a handshake costs more than most of them. Channels per connection are capped
 * below OpenSSH's default MaxSessions (10); the rest wait their turn.
 */
export class SshPool {
  private readonly connections = new Map<string, Promise<PooledConnection>>();

  constructor(private readonly options: { maxChannels?: number; connectTimeoutMs?: number; defaultTimeoutMs?: number } = {}) {}

  async exec(target: SshTarget, command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const connection = await this.connection(target);
    return connection.exec(command, { timeoutMs: this.options.defaultTimeoutMs ?? 60_000, ...options });
  }

  /** Open connections (for tests and metrics). */
  get size(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((pending) => pending.then((c) => c.end(), () => undefined)));
  }

  private async connection(target: SshTarget): Promise<PooledConnection> {
    const key = poolKey(target);
    const pooled = this.connections.get(key);
    if (!pooled) return this.dial(target, key);
    // A handshake that failed for the caller who dialled (its own pin) says nothing about ours.
    const connection = await pooled.catch(() => undefined);
    if (!connection) return this.dial(target, key);
    // The connection was checked against the key of whoever dialled it; this target's own idea
    // of the host's key (or its first use) is checked against the key the connection saw.
    await checkHostKey(target.hostKey, connection.hostKey, `${target.host}:${target.port}`);
    return connection;
  }

  private dial(target: SshTarget, key: string): Promise<PooledConnection> {
    const pending = PooledConnection.open(target, this.options.maxChannels ?? 8, this.options.connectTimeoutMs ?? 10_000, () => {
      if (this.connections.get(key) === pending) this.connections.delete(key);
    });
    this.connections.set(key, pending);
    // A failed handshake must not poison the pool: the next call dials again.
    pending.catch(() => this.connections.get(key) === pending && this.connections.delete(key));
    return pending;
  }
}

function poolKey(target: SshTarget): string {
  const keyHash = createHash('sha256').update(target.privateKey).digest('hex').slice(0, 16);
  return `${target.username}@${target.host}:${target.port}#${keyHash}`;
}

class PooledConnection {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  private constructor(
    private readonly client: Client,
    private readonly maxChannels: number,
    /** The key the host presented when this connection opened. */
    readonly hostKey: PresentedHostKey,
  ) {}

  /** Rejects with HostKeyMismatchError or HostKeyUnverifiedError when the host key does not pass (nothing was sent then). */
  static open(target: SshTarget, maxChannels: number, readyTimeout: number, onGone: () => void): Promise<PooledConnection> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      const hostKey = hostKeyCheck(target.hostKey, `${target.host}:${target.port}`);
      client.once('ready', () => resolve(new PooledConnection(client, maxChannels, hostKey.presented()!)));
      client.once('error', (err) => {
        onGone();
        reject(hostKey.explain(err));
      });
      client.once('close', onGone);
      client.connect({
        host: target.host, port: target.port, username: target.username, privateKey: target.privateKey, readyTimeout, keepaliveInterval: 15_000,
        ...hostKey.options,
      });
    });
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    await this.acquire();
    try {
      return await this.run(command, options);
    } finally {
      this.release();
    }
  }

  end(): void {
    this.client.end();
  }

  private run(command: string, { stdin, timeoutMs, onStdout }: ExecOptions): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream: ClientChannel) => {
        if (err) return reject(err);
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code = -1;
        const timer = timeoutMs
          ? setTimeout(() => {
              stream.close();
              reject(new SshTimeoutError(`"${command.slice(0, 120)}" did not finish within ${timeoutMs} ms`));
            }, timeoutMs)
          : undefined;
        stream.on('data', (chunk: Buffer) => {
          stdout.push(chunk);
          onStdout?.(chunk.toString('utf8'));
        });
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        stream.on('exit', (exitCode: number | null) => {
          code = exitCode ?? -1;
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
        });
        if (stdin !== undefined) stream.end(stdin);
        else stream.end();
      });
    });
  }

  private acquire(): Promise<void> {
    if (this.active < this.maxChannels) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(() => resolve()));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
