import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { makeSandboxSweepScheduleId } from '../../domain/sandbox/sandbox';
import { ensureSandboxSweepSchedule } from '../../workers/sandboxSchedule';
import { eventually } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
const instance = `test-schedule-${randomUUID().slice(0, 8)}`;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
});
afterAll(async () => {
  await env.client.schedule.getHandle(makeSandboxSweepScheduleId(instance)).delete().catch(() => undefined);
  await infra.close();
  await env.teardown();
});

describe('ensureSandboxSweepSchedule', () => {
  it('creates the sweep schedule once, and brings it in line with the configuration on the next start', async () => {
    const taskQueue = uniqueTaskQueue('unpolled');
    const scheduleId = await ensureSandboxSweepSchedule(env.client, { instance, taskQueue, intervalSeconds: 3600 });
    expect(scheduleId).toBe(`sandbox-sweep/${instance}`);
    const first = await env.client.schedule.getHandle(scheduleId).describe();
    expect(first.spec.intervals).toEqual([expect.objectContaining({ every: 3_600_000 })]);
    expect(first.action).toMatchObject({ type: 'startWorkflow', workflowType: 'sandboxSweepWorkflow', taskQueue });
    expect(first.policies.overlap).toBe('SKIP');

    // A worker restarted with another interval updates the schedule instead of failing.
    await ensureSandboxSweepSchedule(env.client, { instance, taskQueue, intervalSeconds: 7200 });
    const second = await env.client.schedule.getHandle(scheduleId).describe();
    expect(second.spec.intervals).toEqual([expect.objectContaining({ every: 7_200_000 })]);
    const listed = [];
    for await (const schedule of env.client.schedule.list()) if (schedule.scheduleId === scheduleId) listed.push(schedule);
    expect(listed).toHaveLength(1);
  });

  it('starts the sweep workflow on the configured task queue when the schedule fires', async () => {
    const taskQueue = uniqueTaskQueue('sandbox-schedule');
    const firing = `${instance}-fires`;
    // An empty snapshot keeps this sweep away from other tests' expired sandboxes.
    const worker = await createTestWorker(env, taskQueue, { ...infra.activities, listExpiredSandboxes: async () => [] });
    try {
      await worker.runUntil(async () => {
        const scheduleId = await ensureSandboxSweepSchedule(env.client, { instance: firing, taskQueue, intervalSeconds: 3600 });
        const handle = env.client.schedule.getHandle(scheduleId);
        await handle.trigger();
        const described = await eventually(() => handle.describe(), (d) => d.info.recentActions.length > 0);
        const run = described.info.recentActions[0]!.action.workflow;
        const report = await env.client.workflow.getHandle(run.workflowId, run.firstExecutionRunId).result();
        expect(report).toEqual({ signalled: 0, orphansRemoved: expect.any(Number) });
      });
    } finally {
      await env.client.schedule.getHandle(makeSandboxSweepScheduleId(firing)).delete().catch(() => undefined);
    }
  });
});
