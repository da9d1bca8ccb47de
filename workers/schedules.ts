import { ScheduleAlreadyRunning, type Client, type ScheduleOptionsAction } from '@temporalio/client';
import { sessionStartOptions, type SessionWorkflowManifest } from '../domain/shared/kind';

interface IntervalSchedule {
  scheduleId: string;
  intervalSeconds: number;
  action: ScheduleOptionsAction;
}

/**
 * Creates a Temporal Schedule that runs a workflow every interval, or brings an existing one in
 * line with the configuration (interval, action): safe to run at every worker start, by every
 * worker. Overlap SKIP: a run still going when the next is due makes the next one pointless.
 */
export async function ensureIntervalSchedule(client: Client, { scheduleId, intervalSeconds, action }: IntervalSchedule): Promise<string> {
  const spec = { intervals: [{ every: `${intervalSeconds}s` }] };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies: { overlap: 'SKIP' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec, action, policies: { ...previous.policies, overlap: 'SKIP' } }));
  }
  return scheduleId;
}

interface PlatformSchedule {
  /** The scheduled workflow's manifest: one run per interval, keyed by the deployment's instance, starting RUNNING. */
  manifest: SessionWorkflowManifest<'RUNNING', [string]>;
  scheduleId: string;
  instance: string;
  taskQueue: string;
  intervalSeconds: number;
  summary: string;
  args: unknown[];
}

/** The schedule of one of the platform's own workflows (a sweep, a reconciler), its runs started as the manifest says. */
export function ensurePlatformSchedule(client: Client, { manifest, scheduleId, instance, taskQueue, intervalSeconds, summary, args }: PlatformSchedule): Promise<string> {
  return ensureIntervalSchedule(client, {
    scheduleId,
    intervalSeconds,
    action: {
      type: 'startWorkflow',
      workflowType: manifest.workflowType,
      ...sessionStartOptions(manifest, { key: [instance], taskQueue, status: 'RUNNING', summary }),
      args,
    },
  });
}
