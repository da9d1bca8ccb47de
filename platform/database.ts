import pg from 'pg';

// timestamptz columns come back as Date; keep them UTC end to end.
export function createPool(databaseUrl: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, options: '-c timezone=UTC' });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

export type { Pool } from 'pg';
