import type { Pool } from 'pg';
import { executionStatus, type ExecutionResult } from '../../domain/execution/execution';

interface ExecutionRecord {
  id: string;
  ownerId: string;
  sessionId?: string;
  executor: 'docker' | 'local';
  containerId?: string;
  result: ExecutionResult;
}

/** The executions' read model: every result in full (history holds it cut short). */
export function createExecutionStore(pool: Pool) {
  return {
    /** Upsert: a retried activity writes the same row again, never a second one. */
    async record(record: ExecutionRecord): Promise<void> {
      await pool.query(
        `INSERT INTO executions (id, owner_id, language, version, session_id, executor, container_id, status, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, result = EXCLUDED.result, finished_at = now()`,
        [record.id, record.ownerId, record.result.language, record.result.version, record.sessionId ?? null, record.executor, record.containerId ?? null, executionStatus(record.result), JSON.stringify(record.result)],
      );
    },

    async result(id: string, ownerId: string): Promise<ExecutionResult | undefined> {
      const { rows } = await pool.query<{ result: ExecutionResult }>('SELECT result FROM executions WHERE id = $1 AND owner_id = $2', [id, ownerId]);
      return rows[0]?.result;
    },
  };
}

export type ExecutionStore = ReturnType<typeof createExecutionStore>;
