import type { Pool } from 'pg';
import type { SandboxEvent, SandboxPlan, SandboxRecord, SandboxStatus, StopReason } from '../../domain/sandbox/sandbox';
import { inTransaction, lockUntilCommit } from '../../platform/database';

interface SandboxRow {
  session_id: string; chat_id: string; owner_id: string; container_name: string; container_id: string;
  status: SandboxStatus; created_at: Date; expires_at: Date;
}

/** A create refused at the owner's limit: how many they hold, and when the soonest expires. */
export interface QuotaRefusal {
  limit: number;
  live: number;
  retryAfterSeconds: number;
}

/** The chat sandboxes' read model: chats and their owners, sandbox sessions, and the seed's events. */
export function createSandboxStore(pool: Pool) {
  return {
    /**
     * The chat's first sandbox makes its owner the chat's owner; the session starts CREATING —
     * unless the owner already holds `maxPerUser` live sandboxes: then nothing is written and
     * the answer says when the soonest of them expires. One owner's creates take turns on an
     * advisory lock (whichever worker runs them), so counting and inserting never interleave.
     */
    recordCreating(sandbox: SandboxPlan): Promise<QuotaRefusal | undefined> {
      return inTransaction(pool, async (db) => {
        if (sandbox.maxPerUser !== undefined) {
          await lockUntilCommit(db, `sandbox-quota/${sandbox.ownerId}`);
          const { rows: [held] } = await db.query<{ live: number; admitted: boolean | null; retry_after: number | null }>(
            `SELECT count(*)::int AS live, bool_or(session_id = $2) AS admitted,
                    ceil(extract(epoch FROM min(expires_at) - now()))::int AS retry_after
               FROM sandboxes WHERE owner_id = $1 AND status IN ('CREATING', 'RUNNING') AND expires_at > now()`,
            [sandbox.ownerId, sandbox.sessionId],
          );
          // A retried create finds its own row: it was admitted the first time.
          if (held && !held.admitted && held.live >= sandbox.maxPerUser) {
            return { limit: sandbox.maxPerUser, live: held.live, retryAfterSeconds: Math.max(1, held.retry_after ?? 1) };
          }
        }
        await db.query('INSERT INTO sandbox_chats (chat_id, owner_id) VALUES ($1, $2) ON CONFLICT (chat_id) DO NOTHING', [sandbox.chatId, sandbox.ownerId]);
        await db.query(
          `INSERT INTO sandboxes (session_id, chat_id, owner_id, container_name, status, created_at, expires_at)
           VALUES ($1, $2, $3, $4, 'CREATING', $5, $6) ON CONFLICT (session_id) DO NOTHING`,
          [sandbox.sessionId, sandbox.chatId, sandbox.ownerId, sandbox.containerName, sandbox.createdAt, sandbox.expiresAt],
        );
        return undefined;
      });
    },

    async markRunning(sessionId: string, containerId: string): Promise<void> {
      await pool.query(`UPDATE sandboxes SET container_id = $2, status = 'RUNNING' WHERE session_id = $1 AND status = 'CREATING'`, [sessionId, containerId]);
    },

    /** The first stop's time and reason stay. */
    async markStopped(sessionId: string, reason: StopReason): Promise<void> {
      await pool.query(`UPDATE sandboxes SET status = 'STOPPED', stopped_at = coalesce(stopped_at, now()), stop_reason = coalesce(stop_reason, $2) WHERE session_id = $1`, [sessionId, reason]);
    },

    async markExpired(sessionId: string): Promise<void> {
      await pool.query(`UPDATE sandboxes SET status = 'EXPIRED' WHERE session_id = $1 AND status = 'RUNNING'`, [sessionId]);
    },

    async recordEvent(event: SandboxEvent): Promise<void> {
      await pool.query('INSERT INTO sandbox_events (event, chat_id, session_id, container_id, error) VALUES ($1, $2, $3, $4, $5)', [event.event, event.chatId, event.sessionId, event.containerId, event.error ?? null]);
    },

    /** Every live session whose expiry is now or earlier, of one owner or of all. */
    async expired(ownerId: string | undefined): Promise<{ chatId: string; sessionId: string }[]> {
      const { rows } = await pool.query<{ chat_id: string; session_id: string }>(
        `SELECT chat_id, session_id FROM sandboxes
          WHERE status IN ('RUNNING', 'EXPIRED') AND expires_at <= now() AND ($1::uuid IS NULL OR owner_id = $1)
          ORDER BY expires_at`,
        [ownerId ?? null],
      );
      return rows.map((row) => ({ chatId: row.chat_id, sessionId: row.session_id }));
    },

    /** Those of `sessionIds` whose session is not stopped. */
    async live(sessionIds: string[]): Promise<Set<string>> {
      const { rows } = await pool.query<{ session_id: string }>(`SELECT session_id FROM sandboxes WHERE session_id = ANY($1::uuid[]) AND status <> 'STOPPED'`, [sessionIds]);
      return new Set(rows.map((row) => row.session_id));
    },

    /** The chats where the owner has a sandbox not stopped yet. */
    async liveChatsOf(ownerId: string): Promise<string[]> {
      const { rows } = await pool.query<{ chat_id: string }>(`SELECT DISTINCT chat_id FROM sandboxes WHERE owner_id = $1 AND status <> 'STOPPED'`, [ownerId]);
      return rows.map((row) => row.chat_id);
    },

    async chatOwner(chatId: string): Promise<string | undefined> {
      const { rows } = await pool.query<{ owner_id: string }>('SELECT owner_id FROM sandbox_chats WHERE chat_id = $1', [chatId]);
      return rows[0]?.owner_id;
    },

    /** The chat's newest session that is RUNNING, or EXPIRED and not stopped yet. */
    async current(chatId: string): Promise<SandboxRecord | undefined> {
      const { rows } = await pool.query<SandboxRow>(
        `SELECT * FROM sandboxes WHERE chat_id = $1 AND status IN ('RUNNING', 'EXPIRED') ORDER BY created_at DESC LIMIT 1`,
        [chatId],
      );
      const row = rows[0];
      return row && {
        sessionId: row.session_id, chatId: row.chat_id, ownerId: row.owner_id, containerName: row.container_name, containerId: row.container_id,
        status: row.status, createdAt: row.created_at.toISOString(), expiresAt: row.expires_at.toISOString(),
      };
    },

    /**
     * How often each event happened, across every worker: the counters a trigger keeps as each
     * event row is written (db/migrations), so a scrape reads a few rows however many events
     * there are, and retention deleting old events never makes a count go down.
     */
    async eventCounts(): Promise<{ event: string; n: number }[]> {
      const { rows } = await pool.query<{ event: string; n: string }>(`SELECT label AS event, sum(value) AS n FROM metric_counters WHERE metric = 'sandbox_event' GROUP BY label`);
      return rows.map((row) => ({ event: row.event, n: Number(row.n) }));
    },
  };
}

export type SandboxStore = ReturnType<typeof createSandboxStore>;
