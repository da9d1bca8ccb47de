import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TerminalStore } from '../../activities/terminal/store';
import {
  replacedCloseCode, terminalBridgeClaimedChannel, terminalCloseCodes, terminalEndedChannel,
  type CloseReason, type TerminalBridgeClaimedNotice, type TerminalEndedNotice,
} from '../../domain/terminal/terminal';
import type { Logger } from '../../platform/logger';
import type { TerminalHosts } from './hosts';
import { clampSize, LiveBridge } from './liveBridge';
import type { TerminalMetrics } from './metrics';
import type { OpenLocks } from './openLocks';
import type { TerminalSessions } from './sessions';
import { verifySessionToken } from './tokens';

interface TerminalBridgeDeps {
  sessions: TerminalSessions;
  store: TerminalStore;
  /** Closed with the bridge: the api's terminal part shuts down as one. */
  openLocks: OpenLocks;
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

/**
 * The one stream the api owns: a WebSocket per session bridged to an SSH shell (LiveBridge).
 * The session's lifecycle stays in its workflow: when the workflow ends a session (close,
 * beacon, TTL, idle) its activity NOTIFYs `terminal_session_ended`, and every api process
 * LISTENing closes that session's socket with the reason. A session has one live bridge: a new
 * socket claims the session (NOTIFY `terminal_bridge_claimed`) and the older one closes
 * wherever it runs, so one token never holds more than one SSH connection. Every ping round a
 * bridge re-reads both, in case a notice was lost while the LISTEN connection was down.
 */
export class TerminalBridge {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 });
  /** Per session, its bridges in this process and the claim each holds (at most one for long). */
  private readonly live = new Map<string, Map<LiveBridge, number>>();
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
    // the bridge listens, instead of losing them to the checks in between.
    ws.pause();
    // Older bridges of this session close: here at once, elsewhere on the notice.
    const claim = await this.deps.store.claimBridge(sessionId);
    const size = { cols: clampSize(query.get('cols'), 80), rows: clampSize(query.get('rows'), 24) };
    const bridge = new LiveBridge(ws, sessionId, host, size, {
      metrics: this.deps.metrics, log: this.deps.log, heartbeatSeconds: this.deps.heartbeatSeconds,
      heartbeat: () => this.deps.sessions.heartbeat(sessionId),
      stillWanted: () => this.stillWanted(sessionId, claim),
    });
    this.track(sessionId, bridge, claim);
    this.replaceOlder(sessionId, claim);
    // It may have ended, or a newer bridge may have claimed it, between the reads above and
    // LISTEN and tracking: check once more now that we listen.
    const verdict = await this.stillWanted(sessionId, claim);
    if (verdict) return bridge.end(verdict.code, verdict.reason);
    bridge.start();
  }

  /** Why a bridge holding `claim` must end now, if it must: its session ended, or a newer bridge took over. */
  private async stillWanted(sessionId: string, claim: number): Promise<{ code: number; reason: string } | undefined> {
    const state = await this.deps.store.bridgeState(sessionId);
    if (state?.status !== 'active') {
      const reason = (state?.reason_closed as CloseReason | null | undefined) ?? 'user_close';
      return { code: terminalCloseCodes[reason], reason };
    }
    return state.claim === claim ? undefined : this.replacedVerdict();
  }

  private replacedVerdict() {
    this.deps.metrics.bridgesReplaced.inc();
    return { code: replacedCloseCode, reason: 'replaced' };
  }

  private track(sessionId: string, bridge: LiveBridge, claim: number): void {
    const bridges = this.live.get(sessionId) ?? new Map<LiveBridge, number>();
    this.live.set(sessionId, bridges.set(bridge, claim));
    this.deps.metrics.openBridges.inc();
    bridge.onEnd(() => {
      this.deps.metrics.openBridges.dec();
      bridges.delete(bridge);
      if (bridges.size === 0 && this.live.get(sessionId) === bridges) this.live.delete(sessionId);
    });
  }

  private replaceOlder(sessionId: string, claim: number): void {
    for (const [bridge, held] of this.live.get(sessionId) ?? []) {
      if (held < claim) {
        const { code, reason } = this.replacedVerdict();
        bridge.end(code, reason);
      }
    }
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
      client.on('notification', ({ channel, payload }) => {
        if (channel === terminalEndedChannel) this.ended(payload);
        if (channel === terminalBridgeClaimedChannel) this.claimed(payload);
      });
      client.on('error', (err) => {
        this.deps.log.warn({ err }, 'terminal LISTEN connection lost; reconnecting on the next terminal');
        this.listener = undefined;
      });
      await client.connect();
      await client.query(`LISTEN ${terminalEndedChannel}`);
      await client.query(`LISTEN ${terminalBridgeClaimedChannel}`);
      return client;
    })().catch((err: unknown) => {
      this.listener = undefined;
      throw err;
    });
    return this.listener;
  }

  private ended(payload: string | undefined): void {
    const notice = JSON.parse(payload ?? '{}') as Partial<TerminalEndedNotice>;
    const reason = notice.reason ?? 'user_close';
    for (const bridge of this.live.get(notice.session_id ?? '')?.keys() ?? []) bridge.end(terminalCloseCodes[reason], reason);
  }

  private claimed(payload: string | undefined): void {
    const notice = JSON.parse(payload ?? '{}') as Partial<TerminalBridgeClaimedNotice>;
    if (notice.session_id && typeof notice.claim === 'number') this.replaceOlder(notice.session_id, notice.claim);
  }

  async close(): Promise<void> {
    for (const bridges of this.live.values()) for (const bridge of bridges.keys()) bridge.terminate();
    const listener = this.listener;
    this.listener = undefined;
    await Promise.all([(await listener?.catch(() => undefined))?.end(), this.deps.openLocks.close()]);
  }
}

/** Wires the bridge to a listening server: upgrades to other paths are refused. */
export function attachTerminalBridge(server: Server, bridge: TerminalBridge): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!bridge.handleUpgrade(req, socket, head)) refuse(socket, 404, 'RouteNotFound', 'no WebSocket here');
  });
}

function refuse(socket: Duplex, status: number, code: string, detail: string, extra: Record<string, unknown> = {}): void {
  const body = JSON.stringify({ type: `https://sessionflow.dev/problems/${code}`, code, status, detail, ...extra });
  socket.end(`HTTP/1.1 ${status} ${code}\r\nConnection: close\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
