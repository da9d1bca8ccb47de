import { Client as SshClient, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { RawData, WebSocket } from 'ws';
import { hostKeyCheck, isHostKeyError } from '../../activities/shared/hostKeys';
import {
  hostKeyRefusedCloseCode, shellExitedCloseCode, sshFailedCloseCode, type TerminalClientMessage,
} from '../../domain/terminal/terminal';
import type { Logger } from '../../platform/logger';
import type { ConnectableHost } from './hosts';
import type { TerminalMetrics } from './metrics';

// Outbound flow control: stop reading from SSH once this much is queued towards a slow browser,
// and resume below the low mark. The SSH window then fills and the remote program blocks, so a
// flood costs bounded memory; keystrokes (Ctrl-C) travel the other way and are never paused.
const highWaterBytes = 1024 * 1024;
const lowWaterBytes = 256 * 1024;
const drainPollMs = 20;
// Inbound: what a client sends before the shell is open is kept (typeahead), up to this much;
// beyond it the socket is not read until the shell opens, and TCP holds the sender back.
export const preShellBufferBytes = 64 * 1024;
// A dead browser or a half-open TCP connection is found within two ping rounds.
const pingIntervalMs = 20_000;
// A burst of resize frames (a window being dragged) becomes at most one window-change per
// interval on the SSH connection, the last size winning.
const resizeIntervalMs = 50;

export interface LiveBridgeDeps {
  metrics: TerminalMetrics;
  log: Logger;
  heartbeatSeconds: number;
  /** A heartbeat for the session's workflow; undefined when it was within the minimum interval (no answer then). */
  heartbeat(): Promise<{ status: string; last_seen_at: Date; expires_at: Date }> | undefined;
  /** Re-checked every ping round: why this bridge must end now (session ended, a newer bridge), if it must. */
  stillWanted(): Promise<{ code: number; reason: string } | undefined>;
}

type Size = { cols: number; rows: number };
// Why the socket is not being read right now; it is read again when no reason is left.
type Hold = 'starting' | 'pre-shell' | 'ssh-window';

/**
 * One WebSocket bridged to one SSH shell with a PTY: bytes as binary frames, resize and
 * heartbeat as JSON text frames. Everything the browser sends is bounded on its way in —
 * typeahead before the shell opens, the SSH channel's own window after, heartbeats by the
 * session's minimum interval, resizes by coalescing — so a client can make the api hold only
 * a fixed amount for it, however fast it sends.
 */
export class LiveBridge {
  private readonly ssh = new SshClient();
  private shell: ClientChannel | undefined;
  private readonly early: Buffer[] = [];
  private earlyBytes = 0;
  private readonly holds = new Set<Hold>(['starting']);
  private applied: Size | undefined;
  private resizeTimer: NodeJS.Timeout | undefined;
  private ping: NodeJS.Timeout | undefined;
  private ended = false;
  private readonly endListeners: (() => void)[] = [];
  private readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    private readonly sessionId: string,
    private readonly host: ConnectableHost,
    private readonly size: Size,
    private readonly deps: LiveBridgeDeps,
  ) {
    this.log = deps.log.child({ sessionId, host: host.name });
    // A client may send (a resize, keystrokes) as soon as it is open: hold its messages until
    // the bridge listens, instead of losing them to the checks in between.
    ws.pause();
    ws.on('close', () => this.end());
  }

  start(): void {
    if (this.ended) return;
    let alive = true;
    this.ws.on('pong', () => (alive = true));
    this.ping = setInterval(() => {
      // A socket we stopped reading cannot deliver its pong; the TTL still bounds its life.
      if (!alive && this.holds.size === 0) return this.ws.terminate();
      alive = false;
      this.ws.ping();
      void this.deps.stillWanted().then((verdict) => verdict && this.end(verdict.code, verdict.reason), () => undefined);
    }, pingIntervalMs);

    const hostKey = hostKeyCheck(this.host.hostKey, `${this.host.address}:${this.host.port}`);
    this.ssh.on('ready', () => this.openShell());
    this.ssh.on('error', (err) => {
      const reason = hostKey.explain(err);
      if (isHostKeyError(reason)) {
        this.log.warn({ code: reason.code, presented: reason.presented?.fingerprint ?? null }, 'terminal host key refused; nothing was sent to the host');
        return this.end(hostKeyRefusedCloseCode, `${reason.code}: ${reason.presented ? `the host presented ${reason.presented.fingerprint}` : 'no pinned key'}`);
      }
      this.log.warn({ err: { message: err.message } }, 'terminal ssh connection failed');
      this.end(sshFailedCloseCode, `ssh: ${err.message}`);
    });
    this.ssh.connect({ ...sshConfig(this.host), ...hostKey.options });

    this.ws.on('message', (data: RawData, isBinary: boolean) => this.fromClient(data, isBinary));
    this.release('starting');
  }

  /** Called once, when the bridge ends. */
  onEnd(listener: () => void): void {
    this.endListeners.push(listener);
  }

  terminate(): void {
    this.end();
    this.ws.terminate();
  }

  /** Ends SSH at once (not after the closing handshake, which a client may drag out) and closes the socket. */
  end(code?: number, reason?: string): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.ping);
    clearTimeout(this.resizeTimer);
    this.ssh.end();
    for (const listener of this.endListeners.splice(0)) listener();
    // The closing handshake reads the client's close frame.
    this.holds.clear();
    this.ws.resume();
    if (code !== undefined && (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING)) this.ws.close(code, truncate(reason ?? ''));
  }

  private openShell(): void {
    // The PTY gets the client's size from the start: full-screen programs draw right at once.
    const opening = { ...this.size };
    this.ssh.shell({ term: 'xterm-256color', cols: opening.cols, rows: opening.rows }, (err, stream) => {
      if (err) return this.end(sshFailedCloseCode, `shell refused: ${err.message}`);
      if (this.ended) return stream.close();
      this.shell = stream;
      this.applied = opening;
      for (const bytes of this.early.splice(0)) this.toShell(bytes);
      this.earlyBytes = 0;
      this.release('pre-shell');
      this.applySize();
      this.ws.send(JSON.stringify({ type: 'ready', session_id: this.sessionId, heartbeat_seconds: this.deps.heartbeatSeconds }));
      const forward = (chunk: Buffer) => this.toClient(stream, chunk);
      stream.on('data', forward);
      stream.stderr.on('data', forward);
      stream.on('close', () => this.end(shellExitedCloseCode, 'shell exited'));
    });
  }

  private toClient(stream: ClientChannel, chunk: Buffer): void {
    this.ws.send(chunk, { binary: true });
    if (this.ws.bufferedAmount > highWaterBytes && !stream.isPaused()) {
      stream.pause();
      this.deps.metrics.flowPauses.inc();
      const drain = setInterval(() => {
        if (this.ws.readyState !== this.ws.OPEN || this.ws.bufferedAmount < lowWaterBytes) {
          clearInterval(drain);
          stream.resume();
        }
      }, drainPollMs);
    }
  }

  private fromClient(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
    if (isBinary) {
      if (this.shell) return this.toShell(bytes);
      // Keystrokes before the shell opens are kept, not dropped (a shell may still discard
      // typeahead when it sets up its line editor; that is its choice), up to the cap.
      this.early.push(bytes);
      this.earlyBytes += bytes.length;
      if (this.earlyBytes >= preShellBufferBytes) this.hold('pre-shell');
      return;
    }
    const message = parseControl(bytes.toString('utf8'));
    if (message?.type === 'resize') this.resize({ cols: message.cols, rows: message.rows });
    if (message?.type === 'heartbeat') {
      this.deps.heartbeat()?.then(
        (row) => this.ws.send(JSON.stringify({ type: 'heartbeat', status: row.status, last_seen_at: row.last_seen_at.toISOString(), expires_at: row.expires_at.toISOString() })),
        (err: unknown) => this.log.warn({ err }, 'terminal heartbeat failed'),
      );
    }
  }

  /** Backpressure: a full SSH channel (the remote program does not read) stops the reading of the socket until it drains. */
  private toShell(bytes: Buffer): void {
    const shell = this.shell!;
    if (shell.write(bytes) || this.holds.has('ssh-window')) return;
    this.hold('ssh-window');
    shell.once('drain', () => this.release('ssh-window'));
  }

  private resize(size: Size): void {
    Object.assign(this.size, size);
    if (!this.shell || this.resizeTimer) return;
    this.applySize();
    this.resizeTimer = setTimeout(() => {
      this.resizeTimer = undefined;
      this.applySize();
    }, resizeIntervalMs);
  }

  private applySize(): void {
    const { cols, rows } = this.size;
    if (!this.shell || (this.applied?.cols === cols && this.applied.rows === rows)) return;
    this.applied = { cols, rows };
    this.shell.setWindow(rows, cols, 0, 0);
  }

  private hold(reason: Hold): void {
    if (this.holds.has(reason)) return;
    if (reason !== 'starting') this.deps.metrics.inboundPauses.inc();
    this.holds.add(reason);
    this.ws.pause();
  }

  private release(reason: Hold): void {
    if (!this.holds.delete(reason) || this.holds.size > 0 || this.ended) return;
    this.ws.resume();
  }
}

function sshConfig(host: ConnectableHost): ConnectConfig {
  const credential = host.auth.type === 'password' ? { password: host.auth.password } : { privateKey: host.auth.private_key, passphrase: host.auth.passphrase };
  // keepalive is off by default in ssh2: a host that vanished would hold the bridge forever.
  return { host: host.address, port: host.port, username: host.username, readyTimeout: 15_000, keepaliveInterval: 15_000, keepaliveCountMax: 4, ...credential };
}

function parseControl(text: string): TerminalClientMessage | undefined {
  try {
    const message = JSON.parse(text) as Partial<TerminalClientMessage>;
    if (message.type === 'heartbeat') return { type: 'heartbeat' };
    if (message.type === 'resize' && Number.isInteger(message.cols) && Number.isInteger(message.rows)) {
      return { type: 'resize', cols: clampSize(String(message.cols), 80), rows: clampSize(String(message.rows), 24) };
    }
  } catch {
    // Not JSON: ignored, like any unknown control message.
  }
  return undefined;
}

export function clampSize(value: string | null, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, 1000) : fallback;
}

// WebSocket close reasons are limited to 123 bytes.
function truncate(reason: string): string {
  return Buffer.from(reason).subarray(0, 120).toString('utf8');
}
