import pg from 'pg';

export interface PoolTimeouts {
  /** How long getting a connection may take before the query fails (pool full, server away). */
  connectTimeoutMs: number;
  /** The server cancels a statement running longer (SQLSTATE 57014); the client gives up a second later. */
  statementTimeoutMs: number;
}

/** No request hangs on PostgreSQL: a dependency that does not answer is an error in seconds. */
export const defaultPoolTimeouts: PoolTimeouts = { connectTimeoutMs: 5_000, statementTimeoutMs: 30_000 };

// timestamptz columns come back as Date; keep them UTC end to end.
export function createPool(databaseUrl: string, max: number, timeouts: PoolTimeouts = defaultPoolTimeouts): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    options: '-c timezone=UTC',
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    statement_timeout: timeouts.statementTimeoutMs,
    query_timeout: timeouts.statementTimeoutMs + 1_000,
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

export type { Pool } from 'pg';
