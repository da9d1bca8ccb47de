import type { Client } from '@temporalio/client';
import { makeSandboxSweepScheduleId } from '../domain/sandbox/sandbox';
import { sandboxSweepKind } from '../domain/sandbox/kind';
import type { sandboxSweepWorkflow } from '../workflows/sandbox/sandboxSweep';
import { ensurePlatformSchedule } from './schedules';

interface SandboxSweepScheduleOptions {
  instance: string;
  taskQueue: string;
  intervalSeconds: number;
}

/** The cleanup sweep's Temporal Schedule, created or brought in line with the configuration. */
export function ensureSandboxSweepSchedule(client: Client, options: SandboxSweepScheduleOptions): Promise<string> {
  return ensurePlatformSchedule(client, {
    manifest: sandboxSweepKind, scheduleId: makeSandboxSweepScheduleId(options.instance), instance: options.instance, taskQueue: options.taskQueue,
    intervalSeconds: options.intervalSeconds, summary: `Sandbox cleanup sweep (${options.instance})`, args: [{}] satisfies Parameters<typeof sandboxSweepWorkflow>,
  });
}
