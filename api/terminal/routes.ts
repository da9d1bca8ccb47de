import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { z } from 'zod';
import { createTerminalStore } from '../../activities/terminal/store';
import { closeReasons, terminalModes, terminalSessionIdPattern, terminalStatuses } from '../../domain/terminal/terminal';
import type { Config } from '../../platform/config';
import type { Logger } from '../../platform/logger';
import type { ApiMetrics } from '../platform/metrics';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import { TerminalBridge } from './bridge';
import { CredentialSealer } from './credentials';
import { registerTerminalHostRoutes, TerminalHosts } from './hosts';
import { OpenLocks } from './openLocks';
import { counterValue, createTerminalMetrics, registerEndedSessionsGauge } from './metrics';
import { registerTerminalPageRoutes } from './page';
import { parseUtcTimestamp, presentSession, TerminalSessions } from './sessions';
import { verifySessionToken } from './tokens';

export type TerminalConfig = Pick<Config,
  'DATABASE_URL' | 'TERMINAL_CREDENTIALS_KEY' | 'TERMINAL_SESSION_TTL_SECONDS' | 'TERMINAL_IDLE_TIMEOUT_SECONDS' | 'TERMINAL_MAX_ACTIVE_SESSIONS' | 'TERMINAL_ALLOWED_ORIGINS'
  | 'TERMINAL_HEARTBEAT_MIN_INTERVAL_MS' | 'SSH_TRUST_ON_FIRST_USE' | 'TEMPORAL_TASK_QUEUE' | 'DATABASE_CONNECT_TIMEOUT_MS' | 'DATABASE_STATEMENT_TIMEOUT_MS'>;

interface TerminalRouteDeps {
  config: TerminalConfig;
  temporal: Client;
  pool: Pool;
  log: Logger;
  metrics: ApiMetrics;
}

const sessionId = z.object({ id: z.string().regex(terminalSessionIdPattern, '64 hexadecimal characters') });
const sessionView = z.object({
  session_id: z.string(), workflow_id: z.string(), host_id: z.uuid().nullable(), host_name: z.string(), mode: z.enum(terminalModes),
  status: z.enum(terminalStatuses), reason_closed: z.enum(closeReasons).nullable(),
  created_at: z.string(), last_seen_at: z.string(), expires_at: z.string(), closed_at: z.string().nullable(), idle_timeout_seconds: z.number(),
  ws_path: z.string(), page_path: z.string(),
});
const heartbeatView = z.object({ session_id: z.string(), status: z.enum(terminalStatuses), last_seen_at: z.string(), remaining_seconds: z.number(), healthy: z.boolean() });
const utcTimestamp = z.string().max(64).transform((value, ctx) => parseUtcTimestamp(value) ?? (ctx.addIssue({ code: 'custom', message: 'an ISO 8601 timestamp' }), z.NEVER));

/** Terminals: hosts, sessions (each a terminal/<id> workflow), the page and the WebSocket bridge. */
export function registerTerminalRoutes(api: ApiRoutes, deps: TerminalRouteDeps): TerminalBridge {
  const metrics = createTerminalMetrics(deps.metrics);
  const store = createTerminalStore(deps.pool);
  const hosts = new TerminalHosts(store, new CredentialSealer(deps.config.TERMINAL_CREDENTIALS_KEY), { trustOnFirstUse: deps.config.SSH_TRUST_ON_FIRST_USE, probeTimeoutMs: 10_000 });
  const openLocks = new OpenLocks(deps.config.DATABASE_URL, { connectTimeoutMs: deps.config.DATABASE_CONNECT_TIMEOUT_MS, statementTimeoutMs: deps.config.DATABASE_STATEMENT_TIMEOUT_MS });
  const sessions = new TerminalSessions(deps.temporal, store, hosts, openLocks, {
    taskQueue: deps.config.TEMPORAL_TASK_QUEUE, ttlSeconds: deps.config.TERMINAL_SESSION_TTL_SECONDS,
    idleTimeoutSeconds: deps.config.TERMINAL_IDLE_TIMEOUT_SECONDS, maxActive: deps.config.TERMINAL_MAX_ACTIVE_SESSIONS,
    heartbeatMinIntervalMs: deps.config.TERMINAL_HEARTBEAT_MIN_INTERVAL_MS,
  }, metrics);
  registerEndedSessionsGauge(deps.metrics, () => sessions.readModelFigures());
  registerTerminalHostRoutes(api, hosts);
  registerTerminalPageRoutes(api);

  api.route(
    {
      method: 'post', path: '/api/v1/terminals', summary: 'Open a terminal on a host, or reuse your active one there (same mode, recent heartbeat); 429 SESSION_LIMIT at the cap', tag: 'terminals', access: 'user',
      body: z.strictObject({ host_id: z.uuid(), mode: z.enum(terminalModes).default('embedded') }),
      responses: {
        201: { description: 'a new session; the token is shown only now', schema: sessionView.extend({ token: z.string(), reused: z.literal(false), page_url: z.string() }) },
        200: { description: 'an active session reused, with a fresh token', schema: sessionView.extend({ token: z.string(), reused: z.literal(true), page_url: z.string() }) },
        429: { description: 'SESSION_LIMIT: active sessions, suggested actions, a reusable session', contentType: 'application/problem+json' },
      },
    },
    async ({ body, principal, res }) => {
      const { row, token, reused } = await sessions.open(principal, body.host_id, body.mode);
      res.status(reused ? 200 : 201).location(`/api/v1/terminals/${row.id}`)
        .json({ ...presentSession(row), token, reused, page_url: `/terminal/${row.id}#token=${encodeURIComponent(token)}` });
    },
  );
  api.route(
    {
      method: 'get', path: '/api/v1/terminals', summary: 'Your terminal sessions, newest first', tag: 'terminals', access: 'user',
      query: z.object({ status: z.enum(terminalStatuses).optional(), since: utcTimestamp.optional() }),
      responses: { 200: { description: 'sessions', schema: z.object({ sessions: z.array(sessionView) }) } },
    },
    async ({ query, principal, res }) => {
      res.json({ sessions: (await sessions.list(principal, query)).map(presentSession) });
    },
  );
  api.route(
    {
      method: 'get', path: '/api/v1/terminals/metrics', summary: 'Terminal figures with the seed\'s keys, plus ended sessions by reason', tag: 'terminals', access: 'admin',
      responses: { 200: { description: 'figures' } },
    },
    async ({ res }) => {
      const figures = await sessions.readModelFigures();
      res.json({
        sessions_created: await counterValue(metrics.sessionsCreated),
        sessions_reused: await counterValue(metrics.sessionsReused),
        session_limit_hits: await counterValue(metrics.sessionLimitHits),
        active_processes: await counterValue(metrics.openBridges),
        flow_control_pauses: await counterValue(metrics.flowPauses),
        inbound_pauses: await counterValue(metrics.inboundPauses),
        bridges_replaced: await counterValue(metrics.bridgesReplaced),
        heartbeats_throttled: await counterValue(metrics.heartbeatsThrottled),
        // No sweeper: each active session's workflow holds its own expiry timer.
        gc_running: figures.active > 0,
        active_sessions: figures.active,
        expired: { ttl: figures.endedByReason.ttl, idle: figures.endedByReason.idle },
        closed: { user_close: figures.endedByReason.user_close, client_lost: figures.endedByReason.client_lost },
      });
    },
  );
  api.route(
    { method: 'get', path: '/api/v1/terminals/:id', summary: 'One terminal session', tag: 'terminals', access: 'user', params: sessionId, responses: { 200: { description: 'the session', schema: sessionView } } },
    async ({ params, principal, res }) => {
      res.json(presentSession(await sessions.visibleTo(principal, params.id)));
    },
  );
  api.route(
    {
      method: 'post', path: '/api/v1/terminals/:id/heartbeat', summary: 'Keep a session from going idle; on an ended session nothing moves. One heartbeat per session per TERMINAL_HEARTBEAT_MIN_INTERVAL_MS reaches the workflow; the others are answered as the session is',
      tag: 'terminals', access: 'user', params: sessionId,
      responses: { 200: { description: 'the session\'s health', schema: heartbeatView } },
    },
    async ({ params, principal, res }) => {
      const seen = await sessions.visibleTo(principal, params.id);
      const row = (await sessions.heartbeat(params.id)) ?? seen;
      const healthy = row.status === 'active';
      res.json({
        session_id: row.id, status: row.status, last_seen_at: row.last_seen_at.toISOString(),
        remaining_seconds: healthy ? Math.max(0, Math.floor((row.expires_at.getTime() - Date.now()) / 1000)) : 0, healthy,
      });
    },
  );
  api.route(
    { method: 'delete', path: '/api/v1/terminals/:id', summary: 'Close a session (idempotent; reason user_close)', tag: 'terminals', access: 'user', params: sessionId, responses: { 200: { description: 'the session as it is now', schema: sessionView } } },
    async ({ params, principal, res }) => {
      await sessions.visibleTo(principal, params.id);
      res.json(presentSession(await sessions.close(params.id, 'user_close')));
    },
  );
  api.route(
    {
      method: 'post', path: '/api/v1/terminals/:id/close-beacon', summary: 'navigator.sendBeacon target: the token in a text/plain JSON or form body, no headers; reason client_lost', tag: 'terminals', access: 'public',
      params: sessionId, body: z.object({ token: z.string().min(1).max(256) }),
      // navigator.sendBeacon cannot set a content type of JSON: text/plain or a form it is.
      headerless: { textPlainJson: true, form: true },
      responses: { 204: { description: 'closed (or already ended)' } },
    },
    async ({ params, body, res }) => {
      const row = await sessions.row(params.id);
      if (!row || !verifySessionToken(body.token, row.token_hash)) throw new ApiError('SessionNotFound', `no terminal session ${params.id} with this token`);
      await sessions.close(params.id, 'client_lost');
      res.status(204).end();
    },
  );
  api.route(
    {
      method: 'get', path: '/api/v1/terminals/:id/ws', summary: 'WebSocket to the session\'s SSH shell (?token=&cols=&rows=; binary frames for bytes, JSON text frames {type:resize|heartbeat}). Plain HTTP gets 426.', tag: 'terminals', access: 'public', params: sessionId,
      responses: { 426: { description: 'upgrade to a WebSocket', contentType: 'application/problem+json' } },
    },
    ({ res }) => {
      res.status(426).set('Upgrade', 'websocket').type('application/problem+json')
        .send(JSON.stringify({ type: 'https://sessionflow.dev/problems/UpgradeRequired', code: 'UpgradeRequired', status: 426, detail: 'connect with a WebSocket client' }));
    },
  );

  const allowedOrigins = deps.config.TERMINAL_ALLOWED_ORIGINS.split(',').map((origin) => origin.trim()).filter(Boolean);
  return new TerminalBridge({
    sessions, store, hosts, metrics, openLocks, log: deps.log, databaseUrl: deps.config.DATABASE_URL, allowedOrigins,
    heartbeatSeconds: Math.max(1, Math.floor(deps.config.TERMINAL_IDLE_TIMEOUT_SECONDS / 3)),
  });
}
