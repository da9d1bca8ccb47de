import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import type { PublicHostRow, SessionRow, TerminalStore } from '../../activities/terminal/store';
import {
  closeUpdate, heartbeatUpdate, makeTerminalWorkflowId, openedUpdate, rotateTokenUpdate,
  type ClientCloseReason, type TerminalMode, type TerminalStatus,
} from '../../domain/terminal/terminal';
import type { terminalSessionWorkflow } from '../../workflows/terminal/terminal';
import { visibleTo, type Principal } from '../platform/auth';
import { ApiError } from '../platform/problems';
import type { TerminalHosts } from './hosts';
import { sessionLimitBody } from './sessionLimit';
import type { TerminalMetrics } from './metrics';
import { generateSessionId, generateSessionToken } from './tokens';
import { terminalKind } from '../../domain/terminal/kind';
import { sessionStartOptions } from '../../domain/shared/kind';
import { HeartbeatThrottle } from './heartbeatThrottle';
import type { OpenLocks } from './openLocks';

interface TerminalSettings {
  taskQueue: string;
  ttlSeconds: number;
  idleTimeoutSeconds: number;
  maxActive: number;
  heartbeatMinIntervalMs: number;
}

/** A session as clients see it: UTC ISO timestamps, never the token hash. */
export function presentSession(row: SessionRow) {
  return {
    session_id: row.id,
    workflow_id: makeTerminalWorkflowId(row.id),
    host_id: row.host_id,
    host_name: row.host_name,
    mode: row.mode,
    status: row.status,
    reason_closed: row.reason_closed,
    created_at: row.created_at.toISOString(),
    last_seen_at: row.last_seen_at.toISOString(),
    expires_at: row.expires_at.toISOString(),
    closed_at: row.closed_at?.toISOString() ?? null,
    idle_timeout_seconds: row.idle_timeout_seconds,
    ws_path: `/api/v1/terminals/${row.id}/ws`,
    page_path: `/terminal/${row.id}`,
  };
}

/**
 * A timestamp from a client as a UTC instant: an explicit offset is honoured, and one without
 * (a "naive" time, the seed's SQLite trap) is read as UTC rather than as the server's zone.
 */
export function parseUtcTimestamp(value: string): Date | undefined {
  const withZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(value) ? value : `${value}Z`;
  const parsed = new Date(withZone);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}

/**
 * Terminal sessions as the api sees them: decisions (reuse, limit) over the read model,
 * lifecycle changes as updates on the session's workflow, answers from the read model.
 */
export class TerminalSessions {
  private readonly heartbeats: HeartbeatThrottle;

  constructor(
    private readonly temporal: Client,
    private readonly store: TerminalStore,
    private readonly hosts: TerminalHosts,
    private readonly openLocks: OpenLocks,
    private readonly settings: TerminalSettings,
    private readonly metrics: TerminalMetrics,
  ) {
    this.heartbeats = new HeartbeatThrottle(settings.heartbeatMinIntervalMs);
  }

  row(id: string): Promise<SessionRow | undefined> {
    return this.store.session(id);
  }

  /** The session if this principal may see it: its owner or an admin; anyone else gets 404. */
  async visibleTo(principal: Principal, id: string): Promise<SessionRow> {
    const row = await this.row(id);
    if (!row || !visibleTo(principal, row.user_id)) throw new ApiError('SessionNotFound', `no terminal session ${id}`);
    return row;
  }

  list(principal: Principal, filter: { status?: TerminalStatus; since?: Date }): Promise<SessionRow[]> {
    return this.store.sessionsOf(principal.userId, filter);
  }

  /**
   * Reuse, else refuse at the limit, else start a new session workflow — atomically per user
   * (OpenLocks), so simultaneous opens can neither pass the cap nor start two sessions where
   * one could be reused.
   */
  async open(principal: Principal, hostId: string, mode: TerminalMode): Promise<{ row: SessionRow; token: string; reused: boolean }> {
    const host = await this.hosts.find(hostId);
    if (!host) throw new ApiError('HostNotFound', `no host ${hostId}`);
    this.hosts.assertConnectable(host);
    return this.openLocks.run(principal.userId, () => this.reuseOrStart(principal, host, mode));
  }

  private async reuseOrStart(principal: Principal, host: PublicHostRow, mode: TerminalMode): Promise<{ row: SessionRow; token: string; reused: boolean }> {
    const hostId = host.id;
    const reused = await this.reuse(principal, hostId, mode);
    if (reused) return reused;

    const active = await this.store.activeSessionsOf(principal.userId);
    if (active.length >= this.settings.maxActive) {
      this.metrics.sessionLimitHits.inc();
      const body = sessionLimitBody(active, this.settings.maxActive, hostId, Date.now());
      throw new ApiError('SessionLimit', body.message, { ...body });
    }

    const sessionId = generateSessionId();
    const { token, tokenHash } = generateSessionToken();
    await this.temporal.workflow.executeUpdateWithStart(openedUpdate, {
      startWorkflowOperation: new WithStartWorkflowOperation<typeof terminalSessionWorkflow>(terminalKind.workflowType, {
        ...sessionStartOptions(terminalKind, {
          key: [sessionId], taskQueue: this.settings.taskQueue, status: 'active', ownerId: principal.userId,
          summary: `Terminal on ${host.name} (${mode}) for ${principal.name}`,
          details: `${host.username}@${host.address}:${host.port}`,
        }),
        // The id is fresh and random: a conflict would be a bug, not a retry.
        workflowIdConflictPolicy: 'FAIL',
        args: [{ sessionId, ownerId: principal.userId, hostId, hostName: host.name, mode, tokenHash, ttlSeconds: this.settings.ttlSeconds, idleTimeoutSeconds: this.settings.idleTimeoutSeconds }],
      }),
    });
    this.metrics.sessionsCreated.inc();
    this.metrics.workflowStarted();
    const row = await this.row(sessionId);
    if (!row) throw new Error(`terminal session ${sessionId} opened without a row`);
    return { row, token, reused: false };
  }

  private async reuse(principal: Principal, hostId: string, mode: TerminalMode) {
    const candidate = await this.store.reusableSession(principal.userId, hostId, mode, this.settings.idleTimeoutSeconds);
    if (!candidate) return undefined;
    const { token, tokenHash } = generateSessionToken();
    try {
      await this.temporal.workflow.getHandle(makeTerminalWorkflowId(candidate.id)).executeUpdate(rotateTokenUpdate, { args: [{ tokenHash }] });
    } catch (err) {
      // It ended between the read and the update: open a new one instead.
      if ((await this.row(candidate.id))?.status !== 'active') return undefined;
      throw err;
    }
    this.metrics.sessionsReused.inc();
    return { row: (await this.row(candidate.id))!, token, reused: true };
  }

  /**
   * Pushes the idle deadline back; on an ended session nothing moves and the row says why.
   * Undefined, at once and without a query, for a heartbeat within the minimum interval of
   * the session's last one: the caller answers from what it has, or not at all.
   */
  heartbeat(id: string): Promise<SessionRow> | undefined {
    if (!this.heartbeats.admit(id)) {
      this.metrics.heartbeatsThrottled.inc();
      return undefined;
    }
    return this.toWorkflow(id, (handle) => handle.executeUpdate(heartbeatUpdate)).then(async () => (await this.row(id))!);
  }

  /** Idempotent: closing an ended session answers with it as it is. */
  async close(id: string, reason: ClientCloseReason): Promise<SessionRow> {
    await this.toWorkflow(id, (handle) => handle.executeUpdate(closeUpdate, { args: [{ reason }] }));
    return (await this.row(id))!;
  }

  /** Runs an update; a refusal because the session already ended is an answer, not an error. */
  private async toWorkflow(id: string, call: (handle: ReturnType<Client['workflow']['getHandle']>) => Promise<unknown>): Promise<void> {
    try {
      await call(this.temporal.workflow.getHandle(makeTerminalWorkflowId(id)));
    } catch (err) {
      if ((await this.row(id))?.status === 'active') throw err;
    }
  }

  /** Figures from the read model for the metrics endpoints. */
  async readModelFigures(): Promise<{ active: number; endedByReason: Record<string, number> }> {
    const rows = await this.store.sessionCountsByReason();
    const endedByReason: Record<string, number> = { user_close: 0, ttl: 0, idle: 0, client_lost: 0 };
    let active = 0;
    for (const { reason, count } of rows) {
      if (reason === null) active = Number(count);
      else endedByReason[reason] = Number(count);
    }
    return { active, endedByReason };
  }
}
