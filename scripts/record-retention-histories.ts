import { randomUUID } from 'node:crypto';
import { openRecorder, saveHistory } from './recorder';
import { createUserKey } from '../api/platform/auth';
import { retentionSweepKind } from '../domain/retention/kind';
import { sessionStartOptions } from '../domain/shared/kind';
import { createSessionflowWorker } from '../workers/createWorker';

/**
 * Records the retention sweep's replay history (test/replay/histories/retentionSweep.json) from
 * a real run on PostgreSQL and Temporal: rows planted years back (older than anything else in
 * the database), deleted in small batches over several activity calls, one table kept for
 * ever. Run through scripts/record-histories.sh, on purpose.
 */
async function main(): Promise<void> {
  const recorder = await openRecorder();
  const { config, pool, activities, connection, client } = recorder;
  const { userId: ownerId } = await createUserKey(pool, `history-recorder-${randomUUID().slice(0, 8)}`, 'user', 'recorder');
  await pool.query(
    `INSERT INTO executions (id, owner_id, language, version, executor, status, result, finished_at)
     SELECT gen_random_uuid(), $1, 'python', '3', 'docker', 'ok', '{}', now() - interval '9000 days' FROM generate_series(1, 9)`,
    [ownerId],
  );
  const taskQueue = `record-retention-${randomUUID()}`;
  const worker = await createSessionflowWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities, workflowBundlePath: recorder.workflowBundlePath });
  const options = sessionStartOptions(retentionSweepKind, { key: [`record-${randomUUID()}`], taskQueue, status: 'RUNNING', summary: 'Retention sweep (recorder)' });
  await worker.runUntil(client.workflow.execute(retentionSweepKind.workflowType, {
    ...options,
    // 2 rows a statement, 2 statements a call: the 9 planted rows take three calls.
    args: [{ rules: [{ table: 'sandbox_events', days: 0 }, { table: 'executions', days: 8000 }], batchSize: 2, limits: { batchesPerCall: 2, callsPerTable: 5 } }],
  }));
  await saveHistory(await client.workflow.getHandle(options.workflowId).fetchHistory(), 'retentionSweep.json');
  await pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
  await recorder.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
