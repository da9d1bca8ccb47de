import type { Pool } from 'pg';
import { terminalEndedChannel, type TerminalEndedNotice } from '../../domain/terminal/terminal';
import type { TerminalActivities } from '../types';

/**
 * The terminal sessions' read model. Every write is idempotent: opening inserts once, a
 * heartbeat never moves last_seen_at backwards or on an ended session, and ending keeps the
 * first outcome (a retried or repeated close leaves status and reason as they were).
 */
export function createTerminalActivities({ pool }: { pool: Pool }): TerminalActivities {
  return {
    async recordTerminalSessionOpened(input) {
      await pool.query(
        `INSERT INTO terminal_sessions (id, user_id, host_id, host_name, mode, token_hash, status, created_at, last_seen_at, expires_at, idle_timeout_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7, $8, $9)
         ON CONFLICT (id) DO NOTHING`,
        [input.sessionId, input.ownerId, input.hostId, input.hostName, input.mode, input.tokenHash, input.createdAt, input.expiresAt, input.idleTimeoutSeconds],
      );
    },

    async recordTerminalHeartbeat({ sessionId, lastSeenAt }) {
      await pool.query(
        `UPDATE terminal_sessions SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = $1 AND status = 'active'`,
        [sessionId, lastSeenAt],
      );
    },

    async recordTerminalToken({ sessionId, tokenHash }) {
      await pool.query(`UPDATE terminal_sessions SET token_hash = $2 WHERE id = $1 AND status = 'active'`, [sessionId, tokenHash]);
    },

    /** Ends the row and tells every api process (LISTEN) so its WebSocket bridge closes. */
    async recordTerminalSessionEnded({ sessionId, status, reason, endedAt }) {
      const { rows: [row] } = await pool.query<{ status: TerminalEndedNotice['status']; reason_closed: TerminalEndedNotice['reason'] }>(
        `WITH ended AS (
           UPDATE terminal_sessions SET status = $2, reason_closed = $3, closed_at = $4
            WHERE id = $1 AND status = 'active'
            RETURNING status, reason_closed)
         SELECT status, reason_closed FROM ended
         UNION ALL
         SELECT status, reason_closed FROM terminal_sessions WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ended)`,
        [sessionId, status, reason, endedAt],
      );
      if (!row) throw new Error(`terminal session ${sessionId} has no row to end`);
      const notice: TerminalEndedNotice = { session_id: sessionId, status: row.status, reason: row.reason_closed };
      await pool.query('SELECT pg_notify($1, $2)', [terminalEndedChannel, JSON.stringify(notice)]);
    },
  };
}
