import type { Pool } from 'pg';
import type { TerminalEndedNotice } from '../../domain/terminal/terminal';
import type { TerminalActivities } from '../types';
import { createTerminalStore } from './store';

/**
 * The terminal sessions' read model, written by the session's workflow. Every write is
 * idempotent (see the store): a retried or repeated close leaves status and reason as they were.
 */
export function createTerminalActivities({ pool }: { pool: Pool }): TerminalActivities {
  const store = createTerminalStore(pool);
  return {
    async recordTerminalSessionOpened(input) {
      await store.recordOpened(input);
    },

    async recordTerminalHeartbeat({ sessionId, lastSeenAt }) {
      await store.recordHeartbeat(sessionId, lastSeenAt);
    },

    async recordTerminalToken({ sessionId, tokenHash }) {
      await store.recordToken(sessionId, tokenHash);
    },

    /** Ends the row and tells every api process (LISTEN) so its WebSocket bridge closes. */
    async recordTerminalSessionEnded({ sessionId, status, reason, endedAt }) {
      const row = await store.recordEnded(sessionId, status, reason, endedAt);
      if (!row) throw new Error(`terminal session ${sessionId} has no row to end`);
      const notice: TerminalEndedNotice = { session_id: sessionId, status: row.status, reason: row.reason_closed };
      await store.notifyEnded(notice);
    },
  };
}
