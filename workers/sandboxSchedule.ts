import type { Client } from '@temporalio/client';
import { makeSandboxSweepScheduleId } from '../domain/sandbox/sandbox';
import { sandboxSweepKind } from '../domain/sandbox/kind';
import { sessionStartOptions } from '../domain/shared/kind';
import type { sandboxSweepWorkflow } from '../workflows/sandbox/sandboxSweep';
import { ensureIntervalSchedule } from './schedules';

interface SandboxSweepScheduleOptions {
  instance: string;
  taskQueue: string;
  intervalSeconds: number;
}

/** The cleanup sweep's Temporal Schedule, created or brought in line with the configuration. */
export function ensureSandboxSweepSchedule(client: Client, options: SandboxSweepScheduleOptions): Promise<string> {
  return ensureIntervalSchedule(client, {
    scheduleId: makeSandboxSweepScheduleId(options.instance),
    intervalSeconds: options.intervalSeconds,
    action: {
      type: 'startWorkflow',
      workflowType: sandboxSweepKind.workflowType,
      ...sessionStartOptions(sandboxSweepKind, { key: [options.instance], taskQueue: options.taskQueue, status: 'RUNNING', summary: `Sandbox cleanup sweep (${options.instance})` }),
      args: [{}] as Parameters<typeof sandboxSweepWorkflow>,
    },
  });
}
