import type pg from 'pg';
import { KeyedSerialQueue } from '../../domain/shared/keyedSerialQueue';
import { createPool, inTransaction, lockUntilCommit, type PoolTimeouts } from '../../platform/database';

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

  private holding<T>(userId: string, task: () => Promise<T>): Promise<T> {
    // The transaction only holds the lock; ending it releases the lock.
    return inTransaction(this.pool, async (client) => {
      await lockUntilCommit(client, `terminal-open/${userId}`);
      return task();
    });
  }

  close(): Promise<void> {
    this.closed ??= this.pool.end();
    return this.closed;
  }
}
