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

/** Runs `work` in one transaction on one connection: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export type { Pool } from 'pg';
