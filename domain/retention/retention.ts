/**
 * Retention: the tables whose rows only accumulate — one row per sandbox event, one per code
 * execution — are trimmed by a scheduled sweep that deletes rows older than each table's
 * configured age, in bounded batches; so are compute file transfers a crashed api left staged.
 * Shared by the worker (schedule), workflow and activity.
 */
export const retainedTables = ['sandbox_events', 'executions', 'compute_file_transfers'] as const;
export type RetainedTable = (typeof retainedTables)[number];

export interface RetentionRule {
  table: RetainedTable;
  /** Rows older than this many days (fractions allowed) go; 0 keeps them for ever. */
  days: number;
}

export interface RetentionSweepInput {
  rules: RetentionRule[];
  /** Rows per DELETE statement: each statement's locks and WAL stay small. */
  batchSize: number;
  /** Bounds of one run (defaults in the workflow); a backlog past them waits for the next run. */
  limits?: { batchesPerCall: number; callsPerTable: number };
}

export interface RetentionSweepReport {
  /** Rows deleted per table in this run. */
  deleted: Partial<Record<RetainedTable, number>>;
  /** false: this run hit its bound with old rows left; the next scheduled run goes on. */
  complete: boolean;
}

/** One schedule per deployment: workers of one instance share it, other instances have their own. */
export function makeRetentionScheduleId(instance: string): string {
  return `retention/${instance}`;
}
