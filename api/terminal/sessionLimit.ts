/**
 * The seed's rich SESSION_LIMIT body: what is open, how old, and what the client can do about
 * it — reuse a session on the same host, close the oldest, or close a named one.
 */
interface ActiveSessionRow {
  id: string;
  host_id: string | null;
  host_name: string;
  mode: string;
  created_at: Date;
  last_seen_at: Date;
}

interface SessionLimitBody {
  error: 'SESSION_LIMIT';
  message: string;
  max_active: number;
  current_count: number;
  active_sessions: { session_id: string; host_id: string | null; host_name: string; mode: string; age_seconds: number; last_seen_seconds: number }[];
  suggested_actions: string[];
  can_reuse: boolean;
  reusable_session_id: string | null;
}

/** `active` oldest first; a session on the requested host (any mode) is the one to reuse. */
export function sessionLimitBody(active: ActiveSessionRow[], maxActive: number, wantedHostId: string, nowMs: number): SessionLimitBody {
  const seconds = (date: Date) => Math.max(0, Math.floor((nowMs - date.getTime()) / 1000));
  const reusable = active.find((session) => session.host_id === wantedHostId);
  return {
    error: 'SESSION_LIMIT',
    message: `Maximum active terminal sessions reached (${active.length}/${maxActive}); close one or reuse an existing session`,
    max_active: maxActive,
    current_count: active.length,
    active_sessions: active.map((session) => ({
      session_id: session.id, host_id: session.host_id, host_name: session.host_name, mode: session.mode,
      age_seconds: seconds(session.created_at), last_seen_seconds: seconds(session.last_seen_at),
    })),
    suggested_actions: [...(reusable ? ['reuse_existing'] : []), 'close_oldest', ...active.map((session) => `close_session:${session.id}`)],
    can_reuse: reusable !== undefined,
    reusable_session_id: reusable?.id ?? null,
  };
}
