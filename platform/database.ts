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

/**
 * Runs `work` in one transaction on one connection: committed if it returns, rolled back if it
 * throws. A connection whose rollback failed is discarded, not handed to the next caller mid-transaction.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackFailed: Error) => (broken = rollbackFailed));
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * Holds a named advisory lock until the transaction of `client` ends: one holder of `name` at a
 * time across every process on the database (e.g. one owner's quota checks).
 */
export async function lockUntilCommit(client: pg.PoolClient, name: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [name]);
}

export type { Pool } from 'pg';
