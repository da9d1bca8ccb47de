import type { Pool } from 'pg';
import type { TerminalEndedNotice } from '../../domain/terminal/terminal';
import { createTerminalStore, type TerminalSessionOpened } from './store';

/**
 * The terminal sessions' read model, written by the session's workflow. Every write is
 * idempotent (see the store): a retried or repeated close leaves status and reason as they were.
 */
export function createTerminalActivities({ pool }: { pool: Pool }) {
  const store = createTerminalStore(pool);
  return {
    async recordTerminalSessionOpened(input: TerminalSessionOpened): Promise<void> {
      await store.recordOpened(input);
    },

    async recordTerminalHeartbeat({ sessionId, lastSeenAt }: { sessionId: string; lastSeenAt: string }): Promise<void> {
      await store.recordHeartbeat(sessionId, lastSeenAt);
    },

    async recordTerminalToken({ sessionId, tokenHash }: { sessionId: string; tokenHash: string }): Promise<void> {
      await store.recordToken(sessionId, tokenHash);
    },

    /** Ends the row and tells every api process (LISTEN) so its WebSocket bridge closes. */
    async recordTerminalSessionEnded({ sessionId, status, reason, endedAt }: { sessionId: string; status: 'closed' | 'expired'; reason: string; endedAt: string }): Promise<void> {
      const row = await store.recordEnded(sessionId, status, reason, endedAt);
      if (!row) throw new Error(`terminal session ${sessionId} has no row to end`);
      const notice: TerminalEndedNotice = { session_id: sessionId, status: row.status, reason: row.reason_closed };
      await store.notifyEnded(notice);
    },
  };
}

export type TerminalActivities = ReturnType<typeof createTerminalActivities>;
