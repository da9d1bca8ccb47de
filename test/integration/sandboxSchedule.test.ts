import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { makeSandboxSweepScheduleId } from '../../domain/sandbox';
import { ensureSandboxSweepSchedule } from '../../workers/sandboxSchedule';
import { connectTestEnv } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
const instance = `test-schedule-${randomUUID().slice(0, 8)}`;
beforeAll(async () => {
  env = await connectTestEnv();
});
afterAll(async () => {
  await env.client.schedule.getHandle(makeSandboxSweepScheduleId(instance)).delete().catch(() => undefined);
  await env.teardown();
});

describe('ensureSandboxSweepSchedule', () => {
  it('creates the sweep schedule once, and brings it in line with the configuration on the next start', async () => {
    const taskQueue = `test-unpolled-${randomUUID()}`;
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
});
