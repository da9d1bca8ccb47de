import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { createRetentionStore } from '../../activities/retention/store';
import { makeRetentionScheduleId, retainedTables, type RetentionSweepReport } from '../../domain/retention/retention';
import { loadConfig } from '../../platform/config';
import { ensureRetentionSchedule } from '../../workers/retentionSchedule';
import { eventually } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { planNodes, recordingPool, type Statement } from '../helpers/statements';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
const instances: string[] = [];
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
});
afterAll(async () => {
  for (const instance of instances) await env.client.schedule.getHandle(makeRetentionScheduleId(instance)).delete().catch(() => undefined);
  await infra.close();
  await env.teardown();
});

/** The configuration a worker would start with, for an instance of this test's own. */
function configFor(env: Record<string, string>) {
  const instance = `test-retention-${randomUUID().slice(0, 8)}`;
  instances.push(instance);
  return loadConfig({ SESSIONFLOW_INSTANCE: instance, ...env });
}

describe('ensureRetentionSchedule', () => {
  it('schedules the sweep with the configured retention, and a restart with new settings updates it', async () => {
    const config = configFor({ TEMPORAL_TASK_QUEUE: uniqueTaskQueue('unpolled'), RETENTION_SANDBOX_EVENTS_DAYS: '14', RETENTION_EXECUTIONS_DAYS: '0', RETENTION_BATCH_SIZE: '500' });
    const scheduleId = await ensureRetentionSchedule(env.client, config);
    expect(scheduleId).toBe(`retention/${config.SESSIONFLOW_INSTANCE}`);
    const first = await env.client.schedule.getHandle(scheduleId).describe();
    expect(first.spec.intervals).toEqual([expect.objectContaining({ every: 3_600_000 })]);
    expect(first.action).toMatchObject({ type: 'startWorkflow', workflowType: 'retentionSweepWorkflow', taskQueue: config.TEMPORAL_TASK_QUEUE, args: [{ rules: [{ table: 'sandbox_events', days: 14 }, { table: 'executions', days: 0 }, { table: 'compute_file_transfers', days: 1 / 24 }], batchSize: 500 }] });
    expect(first.policies.overlap).toBe('SKIP');

    await ensureRetentionSchedule(env.client, { ...config, RETENTION_EXECUTIONS_DAYS: 90, RETENTION_SWEEP_INTERVAL_SECONDS: 600 });
    const second = await env.client.schedule.getHandle(scheduleId).describe();
    expect(second.spec.intervals).toEqual([expect.objectContaining({ every: 600_000 })]);
    expect(second.action).toMatchObject({ args: [{ rules: [{ table: 'sandbox_events', days: 14 }, { table: 'executions', days: 90 }, { table: 'compute_file_transfers', days: 1 / 24 }] }] });
  });

  it('runs the sweep on the configured task queue when the schedule fires', async () => {
    const taskQueue = uniqueTaskQueue('retention-schedule');
    // Years of retention: nothing other tests wrote is touched.
    const config = configFor({ TEMPORAL_TASK_QUEUE: taskQueue, RETENTION_SANDBOX_EVENTS_DAYS: '36500', RETENTION_EXECUTIONS_DAYS: '36500' });
    const worker = await createTestWorker(env, taskQueue, infra.activities);
    await worker.runUntil(async () => {
      const handle = env.client.schedule.getHandle(await ensureRetentionSchedule(env.client, config));
      await handle.trigger();
      const described = await eventually(() => handle.describe(), (d) => d.info.recentActions.length > 0);
      const run = described.info.recentActions[0]!.action.workflow;
      const report: RetentionSweepReport = await env.client.workflow.getHandle(run.workflowId, run.firstExecutionRunId).result();
      // Staged file transfers are kept an hour whatever the settings: only what a crashed api left goes.
      expect(report).toEqual({ deleted: { sandbox_events: 0, executions: 0, compute_file_transfers: expect.any(Number) }, complete: true });
    });
  });
});

describe('a retention batch', () => {
  const owner = randomUUID();
  const chatId = randomUUID();
  const session = randomUUID();
  beforeAll(async () => {
    // Tables of some size (recent rows, which no batch deletes), so the planner's choice is real.
    await infra.pool.query(`INSERT INTO users (id, name, role) VALUES ($1, $2, 'user')`, [owner, `retention-${owner.slice(0, 8)}`]);
    await infra.pool.query(`INSERT INTO sandbox_events (event, chat_id, session_id, container_id) SELECT 'sandbox_created', $1, gen_random_uuid(), 'c' FROM generate_series(1, 20000)`, [chatId]);
    await infra.pool.query(`INSERT INTO executions (id, owner_id, language, version, executor, status, result) SELECT gen_random_uuid(), $1, 'python', '3', 'docker', 'ok', '{}' FROM generate_series(1, 20000)`, [owner]);
    await infra.pool.query(`INSERT INTO compute_sessions (id, owner_id, name, status, image, scaling_group, cluster_mode, cluster_size, cpu_millis, memory_bytes, gpu, params)
      VALUES ($1, $2, 'retention', 'RUNNING', 'python:3.11', 'default', 'single-node', 1, 1000, 268435456, 0, '{}')`, [session, owner]);
    await infra.pool.query(`INSERT INTO compute_file_transfers (id, session_id, direction) SELECT gen_random_uuid(), $1, 'download' FROM generate_series(1, 20000)`, [session]);
    await infra.pool.query('ANALYZE sandbox_events, executions, compute_file_transfers');
  });
  afterAll(async () => {
    await infra.pool.query('DELETE FROM sandbox_events WHERE chat_id = $1', [chatId]);
    await infra.pool.query('DELETE FROM users WHERE id = $1', [owner]);
  });

  it('finds its rows through the time index, never by scanning the table', async () => {
    const statements: Statement[] = [];
    const store = createRetentionStore(recordingPool(infra.pool, statements));
    // A cutoff no row is older than: the statements run, and delete nothing.
    for (const table of retainedTables) expect(await store.deleteOlderThan(table, '1970-01-02T00:00:00Z', 1000)).toBe(0);
    const scans: string[] = [];
    for (const statement of statements) {
      for (const node of await planNodes(infra.pool, statement)) if (node['Relation Name']) scans.push(`${node['Node Type']} ${node['Relation Name']} ${node['Index Name'] ?? ''}`.trim());
    }
    expect(scans.filter((scan) => scan.startsWith('Seq Scan'))).toEqual([]);
    expect(scans).toEqual(expect.arrayContaining(['Index Scan sandbox_events sandbox_events_at', 'Index Scan executions executions_finished_at', 'Index Scan compute_file_transfers compute_file_transfers_created_at']));
  });
});
