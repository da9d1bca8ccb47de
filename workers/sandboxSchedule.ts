import { ScheduleAlreadyRunning, type Client } from '@temporalio/client';
import { makeSandboxSweepScheduleId } from '../domain/sandbox/sandbox';
import { sandboxSweepKind } from '../domain/sandbox/kind';
import { sessionStartOptions } from '../domain/shared/kind';
import type { sandboxSweepWorkflow } from '../workflows/sandbox/sandboxSweep';

interface SandboxSweepScheduleOptions {
  instance: string;
  taskQueue: string;
  intervalSeconds: number;
}

/**
 * Creates the cleanup sweep's Temporal Schedule, or brings an existing one in line with the
 * configuration (interval, task queue): safe to run at every worker start, by every worker.
 * Overlap SKIP: a sweep still running when the next is due makes the next one pointless.
 */
export async function ensureSandboxSweepSchedule(client: Client, options: SandboxSweepScheduleOptions): Promise<string> {
  const scheduleId = makeSandboxSweepScheduleId(options.instance);
  const spec = { intervals: [{ every: `${options.intervalSeconds}s` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: sandboxSweepKind.workflowType,
    ...sessionStartOptions(sandboxSweepKind, { key: [options.instance], taskQueue: options.taskQueue, status: 'RUNNING', summary: `Sandbox cleanup sweep (${options.instance})` }),
    args: [{}] as Parameters<typeof sandboxSweepWorkflow>,
  };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies: { overlap: 'SKIP' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec, action, policies: { ...previous.policies, overlap: 'SKIP' } }));
  }
  return scheduleId;
}
