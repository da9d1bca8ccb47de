import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { Client as SshClient, type ClientChannel, type ConnectConfig } from 'ssh2';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  shellExitedCloseCode, sshFailedCloseCode, terminalCloseCodes, terminalEndedChannel,
  type CloseReason, type TerminalClientMessage, type TerminalEndedNotice,
} from '../../domain/terminal/terminal';
import type { Logger } from '../../platform/logger';
import type { ConnectableHost, TerminalHosts } from './hosts';
import type { TerminalMetrics } from './metrics';
import type { TerminalSessions } from './sessions';
import { verifySessionToken } from './tokens';

interface TerminalBridgeDeps {
  sessions: TerminalSessions;
  hosts: TerminalHosts;
  metrics: TerminalMetrics;
  log: Logger;
  databaseUrl: string;
  /** Origins besides the api's own that may open a terminal (a page served elsewhere). */
  allowedOrigins: string[];
  /** How often the page should heartbeat: a fraction of the idle timeout. */
  heartbeatSeconds: number;
}

const wsPath = /^\/api\/v1\/terminals\/([0-9a-f]{64})\/ws$/;
// Flow control: stop reading from SSH once this much is queued towards a slow browser, and
// resume below the low mark. The SSH window then fills and the remote program blocks, so a
// flood costs bounded memory; keystrokes (Ctrl-C) travel the other way and are never paused.
const highWaterBytes = 1024 * 1024;
const lowWaterBytes = 256 * 1024;
const drainPollMs = 20;
// A dead browser or a half-open TCP connection is found within two ping rounds.
const pingIntervalMs = 20_000;

/**
 * The one stream the api owns: a WebSocket per browser tab bridged to an SSH shell with a PTY
 * (bytes as binary frames, resize/heartbeat as JSON text frames). The session's lifecycle
 * stays in its workflow: when the workflow ends a session (close, beacon, TTL, idle) its
 * activity NOTIFYs `terminal_session_ended`, and every api process LISTENing closes that
 * session's sockets with the reason. The keepalive tick re-reads the row as a safety net for a
 * notice lost while the LISTEN connection was down.
 */
export class TerminalBridge {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 });
  private readonly live = new Map<string, Set<WebSocket>>();
  private listener: Promise<pg.Client> | undefined;

  constructor(private readonly deps: TerminalBridgeDeps) {}

  /** Takes the upgrade if it is a terminal socket; answers refusals as plain HTTP. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = wsPath.exec(url.pathname);
    if (!match) return false;
    this.accept(req, socket, head, match[1]!, url.searchParams).catch((err: unknown) => {
      this.deps.log.error({ err, sessionId: match[1] }, 'terminal upgrade failed');
      refuse(socket, 500, 'Internal', 'the terminal could not be opened');
    });
    return true;
  }

  private async accept(req: IncomingMessage, socket: Duplex, head: Buffer, sessionId: string, query: URLSearchParams): Promise<void> {
    if (!this.originAllowed(req)) return refuse(socket, 403, 'Forbidden', 'this origin may not open terminals');
    const token = query.get('token') ?? '';
    const row = await this.deps.sessions.row(sessionId);
    // Unknown session and wrong token look the same: the id alone reveals nothing.
    if (!row || !token || !verifySessionToken(token, row.token_hash)) return refuse(socket, 401, 'Unauthenticated', 'the session token is not valid');
    if (row.status !== 'active') return refuse(socket, 409, 'InvalidSessionState', `the session is ${row.status} (${row.reason_closed})`, { state: row.status, reason_closed: row.reason_closed });
    const host = row.host_id ? await this.deps.hosts.connectable(row.host_id) : undefined;
    if (!host) return refuse(socket, 404, 'HostNotFound', 'the session host is gone');
    await this.listen();

    const ws = await new Promise<WebSocket>((resolve) => this.wss.handleUpgrade(req, socket, head, resolve));
    // A client may send (a resize, keystrokes) as soon as it is open: hold its messages until
    // the bridge below listens, instead of losing them to the checks in between.
    ws.pause();
    const size = { cols: clampSize(query.get('cols'), 80), rows: clampSize(query.get('rows'), 24) };
    this.track(sessionId, ws);
    // It may have ended between the read above and LISTEN: check once more now that we listen.
    const now = await this.deps.sessions.row(sessionId);
    if (now?.status !== 'active') {
      ws.resume(); // the closing handshake reads the client's close frame
      return closeSocket(ws, (now?.reason_closed as CloseReason | null) ?? 'user_close');
    }
    this.bridge(ws, sessionId, host, size);
  }

  private bridge(ws: WebSocket, sessionId: string, host: ConnectableHost, size: { cols: number; rows: number }): void {
    const log = this.deps.log.child({ sessionId, host: host.name });
    const ssh = new SshClient();
    let shell: ClientChannel | undefined;
    // Keystrokes and a resize that arrive before the shell is open are kept, not dropped
    // (a shell may still discard typeahead when it sets up its line editor; that is its choice).
    const early: Buffer[] = [];
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
      void this.deps.sessions.row(sessionId).then((row) => {
        if (row && row.status !== 'active') closeSocket(ws, (row.reason_closed as CloseReason | null) ?? 'user_close');
      }, () => undefined);
    }, pingIntervalMs);
    ws.on('pong', () => { alive = true; });

    ssh.on('ready', () => {
      // The PTY gets the client's size from the start: full-screen programs draw right at once.
      const opening = { ...size };
      ssh.shell({ term: 'xterm-256color', cols: opening.cols, rows: opening.rows }, (err, stream) => {
        if (err) return ws.close(sshFailedCloseCode, truncate(`shell refused: ${err.message}`));
        shell = stream;
        for (const bytes of early.splice(0)) stream.write(bytes);
        if (size.cols !== opening.cols || size.rows !== opening.rows) stream.setWindow(size.rows, size.cols, 0, 0);
        ws.send(JSON.stringify({ type: 'ready', session_id: sessionId, heartbeat_seconds: this.deps.heartbeatSeconds }));
        const forward = (chunk: Buffer) => {
          ws.send(chunk, { binary: true });
          if (ws.bufferedAmount > highWaterBytes && !stream.isPaused()) {
            stream.pause();
            this.deps.metrics.flowPauses.inc();
            const drain = setInterval(() => {
              if (ws.readyState !== ws.OPEN || ws.bufferedAmount < lowWaterBytes) {
                clearInterval(drain);
                stream.resume();
              }
            }, drainPollMs);
          }
        };
        stream.on('data', forward);
        stream.stderr.on('data', forward);
        stream.on('close', () => ws.close(shellExitedCloseCode, 'shell exited'));
      });
    });
    ssh.on('error', (err) => {
      log.warn({ err: { message: err.message } }, 'terminal ssh connection failed');
      ws.close(sshFailedCloseCode, truncate(`ssh: ${err.message}`));
    });
    ssh.connect(sshConfig(host));

    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      if (isBinary) {
        if (shell) shell.write(bytes);
        else early.push(bytes);
        return;
      }
      const message = parseControl(bytes.toString('utf8'));
      if (message?.type === 'resize') {
        Object.assign(size, { cols: message.cols, rows: message.rows });
        shell?.setWindow(message.rows, message.cols, 0, 0);
      }
      if (message?.type === 'heartbeat') {
        this.deps.sessions.heartbeat(sessionId).then(
          (row) => ws.send(JSON.stringify({ type: 'heartbeat', status: row.status, last_seen_at: row.last_seen_at.toISOString(), expires_at: row.expires_at.toISOString() })),
          (err: unknown) => log.warn({ err }, 'terminal heartbeat failed'),
        );
      }
    });
    ws.on('close', () => {
      clearInterval(ping);
      ssh.end();
    });
    ws.resume();
  }

  private track(sessionId: string, ws: WebSocket): void {
    const sockets = this.live.get(sessionId) ?? new Set<WebSocket>();
    this.live.set(sessionId, sockets.add(ws));
    this.deps.metrics.openBridges.inc();
    ws.on('close', () => {
      this.deps.metrics.openBridges.dec();
      sockets.delete(ws);
      if (sockets.size === 0) this.live.delete(sessionId);
    });
  }

  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    // Browsers always send Origin on WebSockets; a client without one is not a browser page
    // being abused (cross-site WebSocket hijacking), and still needs the token.
    if (!origin) return true;
    const own = [`http://${req.headers.host}`, `https://${req.headers.host}`];
    return own.includes(origin) || this.deps.allowedOrigins.includes(origin);
  }

  /** One LISTEN connection per api process, opened on the first terminal. */
  private listen(): Promise<pg.Client> {
    this.listener ??= (async () => {
      const client = new pg.Client({ connectionString: this.deps.databaseUrl });
      client.on('notification', ({ payload }) => this.ended(payload));
      client.on('error', (err) => {
        this.deps.log.warn({ err }, 'terminal LISTEN connection lost; reconnecting on the next terminal');
        this.listener = undefined;
      });
      await client.connect();
      await client.query(`LISTEN ${terminalEndedChannel}`);
      return client;
    })().catch((err: unknown) => {
      this.listener = undefined;
      throw err;
    });
    return this.listener;
  }

  private ended(payload: string | undefined): void {
    const notice = JSON.parse(payload ?? '{}') as Partial<TerminalEndedNotice>;
    for (const ws of this.live.get(notice.session_id ?? '') ?? []) closeSocket(ws, notice.reason ?? 'user_close');
  }

  async close(): Promise<void> {
    for (const sockets of this.live.values()) for (const ws of sockets) ws.terminate();
    const listener = this.listener;
    this.listener = undefined;
    await (await listener?.catch(() => undefined))?.end();
  }
}

/** Wires the bridge to a listening server: upgrades to other paths are refused. */
export function attachTerminalBridge(server: Server, bridge: TerminalBridge): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!bridge.handleUpgrade(req, socket, head)) refuse(socket, 404, 'RouteNotFound', 'no WebSocket here');
  });
}

function closeSocket(ws: WebSocket, reason: CloseReason): void {
  if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(terminalCloseCodes[reason], reason);
}

function refuse(socket: Duplex, status: number, code: string, detail: string, extra: Record<string, unknown> = {}): void {
  const body = JSON.stringify({ type: `https://sessionflow.dev/problems/${code}`, code, status, detail, ...extra });
  socket.end(`HTTP/1.1 ${status} ${code}\r\nConnection: close\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
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

function clampSize(value: string | null, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, 1000) : fallback;
}

// WebSocket close reasons are limited to 123 bytes.
function truncate(reason: string): string {
  return Buffer.from(reason).subarray(0, 120).toString('utf8');
}
