import type { Pool } from 'pg';
import {
  terminalBridgeClaimedChannel, terminalEndedChannel, type TerminalEndedNotice, type TerminalMode, type TerminalStatus,
} from '../../domain/terminal/terminal';
import { hostKeyColumnList, pinHostKeyOnFirstUse, type HostKeyColumns } from '../shared/hostKeyStore';
import type { HostKeyPin, HostKeySource, PresentedHostKey } from '../shared/hostKeys';

export interface SessionRow {
  id: string;
  user_id: string;
  host_id: string | null;
  host_name: string;
  mode: TerminalMode;
  token_hash: string;
  status: TerminalStatus;
  reason_closed: string | null;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  closed_at: Date | null;
  idle_timeout_seconds: number;
}

type HostAuthType = 'private_key' | 'password';

interface HostRow extends HostKeyColumns {
  id: string; name: string; address: string; port: number; username: string; auth_type: HostAuthType;
  credential_sealed: Buffer; created_at: Date; updated_at: Date;
}

/** A host as the api may show it: every column but the sealed credential. */
export type PublicHostRow = Omit<HostRow, 'credential_sealed'>;

/** A host key to pin with a host's row, and who pinned it. */
interface HostKeyChange { pin: HostKeyPin; source: HostKeySource }

const publicHostColumns = `id, name, address, port, username, auth_type, created_at, updated_at, ${hostKeyColumnList}`;

export interface TerminalSessionOpened {
  sessionId: string; ownerId: string; hostId: string; hostName: string; mode: string; tokenHash: string;
  createdAt: string; expiresAt: string; idleTimeoutSeconds: number;
}

/**
 * The terminals' read model: sessions and the SSH hosts they run on. Every session write is
 * idempotent: opening inserts once, a heartbeat never moves last_seen_at backwards or on an
 * ended session, and ending keeps the first outcome.
 */
export function createTerminalStore(pool: Pool) {
  return {
    async recordOpened(input: TerminalSessionOpened): Promise<void> {
      await pool.query(
        `INSERT INTO terminal_sessions (id, user_id, host_id, host_name, mode, token_hash, status, created_at, last_seen_at, expires_at, idle_timeout_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7, $8, $9)
         ON CONFLICT (id) DO NOTHING`,
        [input.sessionId, input.ownerId, input.hostId, input.hostName, input.mode, input.tokenHash, input.createdAt, input.expiresAt, input.idleTimeoutSeconds],
      );
    },

    async recordHeartbeat(sessionId: string, lastSeenAt: string): Promise<void> {
      await pool.query(
        `UPDATE terminal_sessions SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = $1 AND status = 'active'`,
        [sessionId, lastSeenAt],
      );
    },

    async recordToken(sessionId: string, tokenHash: string): Promise<void> {
      await pool.query(`UPDATE terminal_sessions SET token_hash = $2 WHERE id = $1 AND status = 'active'`, [sessionId, tokenHash]);
    },

    /** Ends an active session; answers the outcome the row has now (the first one, when it had ended already). */
    async recordEnded(sessionId: string, status: 'closed' | 'expired', reason: string, endedAt: string) {
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
      return row;
    },

    /** Tells every api process (LISTEN) that a session ended, so its WebSocket bridge closes. */
    async notifyEnded(notice: TerminalEndedNotice): Promise<void> {
      await pool.query('SELECT pg_notify($1, $2)', [terminalEndedChannel, JSON.stringify(notice)]);
    },

    async session(id: string): Promise<SessionRow | undefined> {
      const { rows: [row] } = await pool.query<SessionRow>('SELECT * FROM terminal_sessions WHERE id = $1', [id]);
      return row;
    },

    /**
     * A user's own sessions, newest first — an admin's list too (the seed's list is "my
     * terminals"; an admin reaches anyone's session by its id).
     */
    async sessionsOf(userId: string, filter: { status?: TerminalStatus; since?: Date }): Promise<SessionRow[]> {
      const { rows } = await pool.query<SessionRow>(
        `SELECT * FROM terminal_sessions WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::timestamptz IS NULL OR created_at >= $3)
          ORDER BY created_at DESC LIMIT 500`,
        [userId, filter.status ?? null, filter.since ?? null],
      );
      return rows;
    },

    /** A user's active sessions, oldest first. */
    async activeSessionsOf(userId: string): Promise<SessionRow[]> {
      const { rows } = await pool.query<SessionRow>(`SELECT * FROM terminal_sessions WHERE user_id = $1 AND status = 'active' ORDER BY created_at`, [userId]);
      return rows;
    },

    /** The user's most recently seen active session on the host in this mode, if it heartbeated within the idle timeout. */
    async reusableSession(userId: string, hostId: string, mode: TerminalMode, idleTimeoutSeconds: number): Promise<SessionRow | undefined> {
      const { rows: [candidate] } = await pool.query<SessionRow>(
        `SELECT * FROM terminal_sessions
          WHERE user_id = $1 AND host_id = $2 AND mode = $3 AND status = 'active'
            AND last_seen_at > now() - make_interval(secs => $4) AND expires_at > now()
          ORDER BY last_seen_at DESC LIMIT 1`,
        [userId, hostId, mode, idleTimeoutSeconds],
      );
      return candidate;
    },

    /**
     * Sessions per close reason; the null reason counts the active ones. Ended sessions come from
     * the counters a trigger keeps as each session ends (db/migrations), active ones through the
     * partial index of active sessions: neither reads the ended rows, however many there are.
     */
    async sessionCountsByReason(): Promise<{ reason: string | null; count: string }[]> {
      const { rows } = await pool.query<{ reason: string | null; count: string }>(
        `SELECT NULL AS reason, count(*) FROM terminal_sessions WHERE status = 'active'
         UNION ALL
         SELECT label, sum(value) FROM metric_counters WHERE metric = 'terminal_session_ended' GROUP BY label`,
      );
      return rows;
    },

    async host(id: string): Promise<PublicHostRow | undefined> {
      const { rows: [row] } = await pool.query<PublicHostRow>(`SELECT ${publicHostColumns} FROM terminal_hosts WHERE id = $1`, [id]);
      return row;
    },

    async hostWithCredential(id: string): Promise<HostRow | undefined> {
      const { rows: [row] } = await pool.query<HostRow>('SELECT * FROM terminal_hosts WHERE id = $1', [id]);
      return row;
    },

    async hosts(): Promise<PublicHostRow[]> {
      const { rows } = await pool.query<PublicHostRow>(`SELECT ${publicHostColumns} FROM terminal_hosts ORDER BY name`);
      return rows;
    },

    async createHost(host: { id: string; name: string; address: string; port: number; username: string; authType: HostAuthType; sealed: Buffer; hostKey: HostKeyChange }): Promise<PublicHostRow> {
      const { rows: [row] } = await pool.query<PublicHostRow>(
        `INSERT INTO terminal_hosts (id, name, address, port, username, auth_type, credential_sealed, host_key_fingerprint, host_key_algorithm, host_key_source, host_key_pinned_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now()) RETURNING ${publicHostColumns}`,
        [host.id, host.name, host.address, host.port, host.username, host.authType, host.sealed, host.hostKey.pin.fingerprint, host.hostKey.pin.algorithm, host.hostKey.source],
      );
      return row!;
    },

    /** Changes what is given and keeps the rest; undefined when there is no such host. */
    async updateHost(id: string, change: { name?: string; address?: string; port?: number; username?: string; authType?: HostAuthType; sealed?: Buffer; hostKey?: HostKeyChange }): Promise<PublicHostRow | undefined> {
      const { rows: [row] } = await pool.query<PublicHostRow>(
        `UPDATE terminal_hosts SET name = COALESCE($2, name), address = COALESCE($3, address), port = COALESCE($4, port), username = COALESCE($5, username),
                auth_type = COALESCE($6, auth_type), credential_sealed = COALESCE($7, credential_sealed), updated_at = now(),
                host_key_fingerprint = COALESCE($8, host_key_fingerprint),
                host_key_algorithm = CASE WHEN $8::text IS NULL THEN host_key_algorithm ELSE $9 END,
                host_key_source = COALESCE($10, host_key_source),
                host_key_pinned_at = CASE WHEN $8::text IS NULL THEN host_key_pinned_at ELSE now() END
          WHERE id = $1 RETURNING ${publicHostColumns}`,
        [id, change.name ?? null, change.address ?? null, change.port ?? null, change.username ?? null, change.authType ?? null, change.sealed ?? null,
          change.hostKey?.pin.fingerprint ?? null, change.hostKey?.pin.algorithm ?? null, change.hostKey?.source ?? null],
      );
      return row;
    },

    /** Trust on first use for a host without a pin; answers the pin in place afterwards. */
    pinHostKeyOnFirstUse(id: string, presented: PresentedHostKey): Promise<HostKeyPin> {
      return pinHostKeyOnFirstUse(pool, 'terminal_hosts', id, presented);
    },

    async activeSessionsOnHost(id: string): Promise<number> {
      const { rows: [active] } = await pool.query<{ count: string }>(`SELECT count(*) FROM terminal_sessions WHERE host_id = $1 AND status = 'active'`, [id]);
      return Number(active?.count);
    },

    /**
     * A new WebSocket bridge of the session takes the next claim and tells every api process
     * (NOTIFY), whose bridges of the session with a lower claim then close.
     */
    async claimBridge(sessionId: string): Promise<number> {
      const { rows: [row] } = await pool.query<{ claim: string }>(
        `WITH claimed AS (
           INSERT INTO terminal_bridges (session_id, claim) VALUES ($1, nextval('terminal_bridge_claims'))
           ON CONFLICT (session_id) DO UPDATE SET claim = EXCLUDED.claim, claimed_at = now()
           RETURNING claim)
         SELECT claim, pg_notify($2, json_build_object('session_id', $1::text, 'claim', claim)::text) FROM claimed`,
        [sessionId, terminalBridgeClaimedChannel],
      );
      return Number(row!.claim);
    },

    /** What a live bridge re-checks: is its session still active, and is it still the newest bridge? */
    async bridgeState(sessionId: string): Promise<{ status: TerminalStatus; reason_closed: string | null; claim: number | null } | undefined> {
      const { rows: [row] } = await pool.query<{ status: TerminalStatus; reason_closed: string | null; claim: string | null }>(
        `SELECT s.status, s.reason_closed, b.claim FROM terminal_sessions s LEFT JOIN terminal_bridges b ON b.session_id = s.id WHERE s.id = $1`,
        [sessionId],
      );
      return row && { ...row, claim: row.claim === null ? null : Number(row.claim) };
    },

    /** False when there was no such host. */
    async deleteHost(id: string): Promise<boolean> {
      const { rowCount } = await pool.query('DELETE FROM terminal_hosts WHERE id = $1', [id]);
      return Boolean(rowCount);
    },
  };
}

export type TerminalStore = ReturnType<typeof createTerminalStore>;
