import { Counter, Gauge } from 'prom-client';
import type { ApiMetrics } from '../platform/metrics';

/**
 * The seed's terminal counters, kept by the api process (it decides reuse and limits, and owns
 * the SSH bridges), exported in Prometheus text and as the seed's JSON keys.
 */
export interface TerminalMetrics {
  sessionsCreated: Counter;
  sessionsReused: Counter;
  sessionLimitHits: Counter;
  /** Open WebSocket ↔ SSH bridges: the seed's `active_processes`. */
  openBridges: Gauge;
  /** Times a bridge stopped reading SSH because the browser fell behind (flow control). */
  flowPauses: Counter;
  /** Times a bridge stopped reading the browser: the shell was not open yet, or its SSH channel was full. */
  inboundPauses: Counter;
  /** Bridges closed because a newer WebSocket of the same session took over. */
  bridgesReplaced: Counter;
  /** Heartbeats answered without reaching the workflow (within the minimum interval). */
  heartbeatsThrottled: Counter;
  workflowStarted(): void;
}

export function createTerminalMetrics(api: ApiMetrics): TerminalMetrics {
  const registers = [api.registry];
  return {
    sessionsCreated: new Counter({ name: 'sessionflow_terminal_sessions_created_total', help: 'Terminal sessions started (not reused)', registers }),
    sessionsReused: new Counter({ name: 'sessionflow_terminal_sessions_reused_total', help: 'Terminal requests answered with an existing session', registers }),
    sessionLimitHits: new Counter({ name: 'sessionflow_terminal_session_limit_hits_total', help: 'Terminal requests refused with SESSION_LIMIT', registers }),
    openBridges: new Gauge({ name: 'sessionflow_terminal_bridges_open', help: 'WebSocket to SSH bridges open in this api process', registers }),
    flowPauses: new Counter({ name: 'sessionflow_terminal_flow_pauses_total', help: 'Times a terminal bridge paused SSH output for a slow WebSocket', registers }),
    inboundPauses: new Counter({ name: 'sessionflow_terminal_inbound_pauses_total', help: 'Times a terminal bridge stopped reading its WebSocket (shell not open yet, or SSH channel full)', registers }),
    bridgesReplaced: new Counter({ name: 'sessionflow_terminal_bridges_replaced_total', help: 'Terminal bridges closed because a newer WebSocket of the session took over', registers }),
    heartbeatsThrottled: new Counter({ name: 'sessionflow_terminal_heartbeats_throttled_total', help: 'Terminal heartbeats within the minimum interval, not sent to the workflow', registers }),
    workflowStarted: () => api.workflowsStarted.inc({ workflow: 'terminalSessionWorkflow' }),
  };
}

/** Ended sessions by close reason, read from the read model when Prometheus scrapes. */
export function registerEndedSessionsGauge(api: ApiMetrics, figures: () => Promise<{ active: number; endedByReason: Record<string, number> }>): void {
  // Registered on the api's registry; prom-client calls collect() on every scrape.
  new Gauge({
    name: 'sessionflow_terminal_sessions_ended', help: 'Terminal sessions ended, by close reason (ttl and idle are expiries)', labelNames: ['reason'] as const, registers: [api.registry],
    async collect() {
      const { endedByReason } = await figures().catch(() => ({ endedByReason: {} as Record<string, number> }));
      for (const [reason, count] of Object.entries(endedByReason)) this.set({ reason }, count);
    },
  });
}

export async function counterValue(counter: Counter | Gauge): Promise<number> {
  return (await counter.get()).values.reduce((sum, { value }) => sum + value, 0);
}
