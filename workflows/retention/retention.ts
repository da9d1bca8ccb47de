import { proxyActivities } from '@temporalio/workflow';
import { retentionSweepKind } from '../../domain/retention/kind';
import type { RetentionSweepInput, RetentionSweepReport } from '../../domain/retention/retention';
import type { RetentionActivities } from '../../activities/retention/retention';
import { upsertStatus } from '../shared/status';

// A call deletes at most batchesPerCall batches and heartbeats after each: a delete stuck on a
// lock misses its heartbeat and is retried; one that keeps failing fails this run, and the
// next scheduled run starts over.
const retention = proxyActivities<RetentionActivities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '5s', maximumAttempts: 3 },
});

/** Bounds of one run: a backlog bigger than this is left to the next scheduled run. */
const defaultLimits = { batchesPerCall: 20, callsPerTable: 25 };
const dayMs = 86_400_000;

/**
 * The scheduled retention sweep: for each table, deletes the rows older than its retention, a
 * bounded batch at a time, and reports how many went. A table kept for ever (0 days) is skipped.
 */
export async function retentionSweepWorkflow(input: RetentionSweepInput): Promise<RetentionSweepReport> {
  try {
    return await sweepOnce(input);
  } catch (err) {
    // A run that could not finish says so in the Web UI; the next scheduled run tries again.
    upsertStatus(retentionSweepKind, 'FAILED');
    throw err;
  }
}

async function sweepOnce(input: RetentionSweepInput): Promise<RetentionSweepReport> {
  // Determinism: the cutoffs come from workflow time, fixed once for the whole run.
  const startedAt = Date.now();
  const { batchesPerCall, callsPerTable } = input.limits ?? defaultLimits;
  const report: RetentionSweepReport = { deleted: {}, complete: true };
  for (const rule of input.rules.filter(({ days }) => days > 0)) {
    const cutoff = new Date(startedAt - rule.days * dayMs).toISOString();
    let deleted = 0;
    let more = true;
    for (let call = 0; more && call < callsPerTable; call++) {
      const result = await retention.deleteOlderRows({ table: rule.table, cutoff, batchSize: input.batchSize, maxBatches: batchesPerCall });
      deleted += result.deleted;
      more = result.more;
    }
    report.deleted[rule.table] = deleted;
    if (more) report.complete = false;
  }
  upsertStatus(retentionSweepKind, 'SWEPT');
  return report;
}
