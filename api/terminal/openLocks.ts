import type pg from 'pg';
import { KeyedSerialQueue } from '../../domain/shared/keyedSerialQueue';
import { createPool, type PoolTimeouts } from '../../platform/database';

// An advisory lock class of its own ('term'), so no other lock in the database collides with it.
const openLockClass = 0x7465726d;
// Opens of different users proceed side by side up to this many per api process; more wait
// their turn for a connection (bounded by the connect timeout).
const lockConnections = 4;

/**
 * One terminal open at a time per user, across api processes: the reuse check, the cap check
 * and the start of an open run holding the user's PostgreSQL advisory lock, in a transaction
 * that lasts until the new session's row is written, so every open sees the sessions of the
 * opens before it. The locks live on a small pool of their own: an open holds its connection
 * while the workflow starts, and must starve neither the api's queries nor itself. In front,
 * a queue per user keeps a burst of one user's opens waiting in memory, not on connections.
 */
export class OpenLocks {
  private readonly queue = new KeyedSerialQueue();
  private readonly pool: pg.Pool;
  private closed: Promise<void> | undefined;

  constructor(databaseUrl: string, timeouts: PoolTimeouts) {
    this.pool = createPool(databaseUrl, lockConnections, timeouts);
  }

  run<T>(userId: string, task: () => Promise<T>): Promise<T> {
    return this.queue.run(userId, () => this.holding(userId, task));
  }

  private async holding<T>(userId: string, task: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [openLockClass, userId]);
      return await task();
    } finally {
      // The transaction only holds the lock; ending it releases the lock.
      await client.query('ROLLBACK').catch((err: Error) => (broken = err));
      client.release(broken);
    }
  }

  close(): Promise<void> {
    this.closed ??= this.pool.end();
    return this.closed;
  }
}
