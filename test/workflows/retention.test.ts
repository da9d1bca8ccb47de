import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { createUserKey } from '../../api/platform/auth';
import { retentionSweepKind } from '../../domain/retention/kind';
import type { RetentionSweepInput } from '../../domain/retention/retention';
import { sessionStartOptions } from '../../domain/shared/kind';
import { SessionDetail, SessionKind, SessionStatus } from '../../domain/shared/searchAttributes';
import type { retentionSweepWorkflow } from '../../workflows/retention/retention';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

/**
 * The retention sweep against the run's dev server and the test database: rows of this test's
 * own chat and owner are planted years back (older than anything other tests write, so the
 * sweep's counts are this test's alone), the real activities delete them, and what is younger
 * than the retention stays.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let ownerId: string;
const chatId = randomUUID();

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  ({ userId: ownerId } = await createUserKey(infra.pool, `retention-${randomUUID().slice(0, 8)}`, 'user', 'test'));
});
afterAll(async () => {
  await infra.pool.query('DELETE FROM sandbox_events WHERE chat_id = $1', [chatId]);
  await infra.pool.query('DELETE FROM executions WHERE owner_id = $1', [ownerId]);
  await infra.close();
  await env.teardown();
});

/** Plants `count` sandbox events and executions `daysAgo` days old. */
async function plant(count: number, daysAgo: number): Promise<void> {
  await infra.pool.query(
    `INSERT INTO sandbox_events (event, chat_id, session_id, container_id, at)
     SELECT 'sandbox_created', $1, gen_random_uuid(), 'c', now() - make_interval(days => $3) FROM generate_series(1, $2)`,
    [chatId, count, daysAgo],
  );
  await infra.pool.query(
    `INSERT INTO executions (id, owner_id, language, version, executor, status, result, finished_at)
     SELECT gen_random_uuid(), $1, 'python', '3', 'docker', 'ok', '{}', now() - make_interval(days => $3) FROM generate_series(1, $2)`,
    [ownerId, count, daysAgo],
  );
}

async function ages(): Promise<{ events: number[]; executions: number[] }> {
  const days = (table: string, time: string, column: string, value: string) =>
    infra.pool.query<{ days: number }>(`SELECT extract(day FROM now() - ${time})::int AS days FROM ${table} WHERE ${column} = $1 ORDER BY ${time}`, [value]).then(({ rows }) => rows.map((row) => row.days));
  return { events: await days('sandbox_events', 'at', 'chat_id', chatId), executions: await days('executions', 'finished_at', 'owner_id', ownerId) };
}

async function sweep(input: RetentionSweepInput) {
  const taskQueue = uniqueTaskQueue('retention');
  const worker = await createTestWorker(env, taskQueue, infra.activities);
  // Started as the schedule starts it: same manifest, a test's own instance name.
  const options = sessionStartOptions(retentionSweepKind, { key: [`test-${randomUUID()}`], taskQueue, status: 'RUNNING', summary: 'Retention sweep (test)' });
  const { workflowId } = options;
  const report = await worker.runUntil(env.client.workflow.execute<typeof retentionSweepWorkflow>(retentionSweepKind.workflowType, { ...options, args: [input] }));
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const deleteCalls = history.events!.filter((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'deleteOlderRows').length;
  return { report, deleteCalls, workflowId };
}

describe('retentionSweepWorkflow', () => {
  it('deletes the rows older than each table\'s retention and keeps the younger ones', async () => {
    await plant(7, 4000);
    await plant(3, 10);
    const { report, workflowId } = await sweep({ rules: [{ table: 'sandbox_events', days: 3650 }, { table: 'executions', days: 3650 }], batchSize: 1000 });
    expect(report.complete).toBe(true);
    expect(report.deleted).toEqual({ sandbox_events: 7, executions: 7 });
    expect(await ages()).toEqual({ events: [10, 10, 10], executions: [10, 10, 10] });
    const { searchAttributes } = await env.client.workflow.getHandle(workflowId).describe();
    expect([searchAttributes[SessionKind.name], searchAttributes[SessionStatus.name], searchAttributes[SessionDetail.name]]).toEqual([['retention'], ['ENDED'], ['SWEPT']]);
  });

  it('keeps a table for ever at 0 days, and applies each table its own retention', async () => {
    await plant(2, 5000);
    const { report } = await sweep({ rules: [{ table: 'sandbox_events', days: 0 }, { table: 'executions', days: 4500 }], batchSize: 1000 });
    expect(report.deleted).toEqual({ executions: 2 });
    expect(await ages()).toEqual({ events: [5000, 5000, 10, 10, 10], executions: [10, 10, 10] });
    await sweep({ rules: [{ table: 'sandbox_events', days: 4500 }], batchSize: 1000 });
    expect((await ages()).events).toEqual([10, 10, 10]);
  });

  it('deletes in bounded batches, and leaves a backlog past its bounds to the next run', async () => {
    await plant(25, 6000);
    const bounded = { rules: [{ table: 'executions' as const, days: 5500 }], batchSize: 2, limits: { batchesPerCall: 3, callsPerTable: 2 } };
    // 2 rows a statement, 3 statements a call, 2 calls a run: at most 12 rows per run.
    const first = await sweep(bounded);
    expect(first).toMatchObject({ report: { deleted: { executions: 12 }, complete: false }, deleteCalls: 2 });
    const second = await sweep(bounded);
    expect(second.report).toEqual({ deleted: { executions: 12 }, complete: false });
    const third = await sweep(bounded);
    expect(third).toMatchObject({ report: { deleted: { executions: 1 }, complete: true }, deleteCalls: 1 });
    expect((await ages()).executions).toEqual([10, 10, 10]);
  });
});
