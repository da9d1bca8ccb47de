import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { RetainedTable } from '../../domain/retention/retention';
import { createRetentionStore } from './store';

export interface DeleteOlderRowsInput {
  table: RetainedTable;
  /** UTC ISO: rows older than this go (the workflow fixes it once per run). */
  cutoff: string;
  batchSize: number;
  /** Batches this call may delete before handing back to the workflow. */
  maxBatches: number;
}

export function createRetentionActivities(deps: { pool: Pool }) {
  const store = createRetentionStore(deps.pool);
  return {
    /**
     * Deletes old rows of one table, a batch per statement, heartbeating after each. Idempotent:
     * a retry deletes what the failed attempt left. `more`: the last batch was full.
     */
    async deleteOlderRows(input: DeleteOlderRowsInput): Promise<{ deleted: number; more: boolean }> {
      let deleted = 0;
      for (let batch = 0; batch < input.maxBatches; batch++) {
        const count = await store.deleteOlderThan(input.table, input.cutoff, input.batchSize);
        deleted += count;
        Context.current().heartbeat({ deleted });
        if (count < input.batchSize) return { deleted, more: false };
      }
      return { deleted, more: true };
    },
  };
}

export type RetentionActivities = ReturnType<typeof createRetentionActivities>;
