import { Context } from '@temporalio/activity';
import type { PxeActivities } from '../../activities/pxe/pxe';
import { planPxeSession, type PxeSessionPlan } from '../../domain/pxe/pxe';
import { domainFailure, type ErrorCode } from '../../domain/shared/errors';

/** The activities pxeSessionWorkflow calls: a rename in createPxeActivities breaks this type. */
export type PxeSagaActivity =
  | 'preparePxeSession' | 'ensureSessionDisk' | 'removeSessionDisk' | 'ensureIscsiTarget' | 'removeIscsiTarget'
  | 'writeTftpScript' | 'deleteTftpScript' | 'addDhcpHost' | 'removeDhcpHost' | 'recordPxeSessionStatus';

/** How one activity misbehaves; an activity without a fault succeeds at once. */
export type Fault =
  /** A refusal by name, as the real activity throws it (non-retryable). */
  | { fails: ErrorCode }
  /** An infrastructure hiccup (a dropped SSH connection): the first attempt fails, retries succeed. */
  | { failsOnce: true }
  /** Never answers until Temporal cancels it (or the worker shuts down). */
  | { hangs: true }
  /** Answers once the test opens the gate. */
  | { waitsFor: Promise<void> };

export type RecordedStatus = Parameters<PxeActivities['recordPxeSessionStatus']>[0];

/**
 * The saga's activities with no boot server behind them: each call is recorded (a status
 * write as `status <STATUS>`), and a fault can be injected per activity. The plan comes from
 * the real planner, so the workflow renders a real iPXE script from it.
 */
export function recordingBootServer(faults: Partial<Record<PxeSagaActivity, Fault>> = {}) {
  const calls: string[] = [];
  const statuses: RecordedStatus[] = [];
  const entered = new Map<PxeSagaActivity, () => void>();
  const reached = new Map<PxeSagaActivity, Promise<void>>();
  for (const name of Object.keys(faults) as PxeSagaActivity[]) reached.set(name, new Promise<void>((resolve) => entered.set(name, resolve)));
  const attempts = new Map<PxeSagaActivity, number>();

  async function call(name: PxeSagaActivity, label: string = name): Promise<void> {
    calls.push(label);
    attempts.set(name, (attempts.get(name) ?? 0) + 1);
    entered.get(name)?.();
    const fault = faults[name];
    if (!fault) return;
    if ('fails' in fault) throw domainFailure(fault.fails, `${name} refused (injected)`);
    if ('failsOnce' in fault && attempts.get(name) === 1) throw new Error(`${name}: connection reset (injected)`);
    if ('hangs' in fault) {
      Context.current().heartbeat();
      await Context.current().cancelled;
    }
    if ('waitsFor' in fault) await fault.waitsFor;
  }

  const activities: Pick<PxeActivities, PxeSagaActivity> = {
    async preparePxeSession({ sessionId }): Promise<PxeSessionPlan> {
      await call('preparePxeSession');
      return planPxeSession({
        sessionId,
        machine: { id: `machine-${sessionId}`, name: 'rack1-node7', mac: '52:54:00:12:34:56', ip: '10.0.0.7', tid: 7 },
        image: { rawPath: '/srv/sessionflow/images/disk.img' },
        bootServer: { id: 'boot-1', targetDriver: 'tgt', portalIp: '10.0.0.1', iqnPrefix: 'iqn.2025-01.dev.sessionflow', imageDir: '/srv/sessionflow/images', tgtControlPort: null },
      });
    },
    ensureSessionDisk: () => call('ensureSessionDisk'),
    removeSessionDisk: () => call('removeSessionDisk'),
    ensureIscsiTarget: () => call('ensureIscsiTarget'),
    removeIscsiTarget: () => call('removeIscsiTarget'),
    writeTftpScript: () => call('writeTftpScript'),
    deleteTftpScript: () => call('deleteTftpScript'),
    addDhcpHost: async () => {
      await call('addDhcpHost');
      return { entries: 1, reloaded: true };
    },
    removeDhcpHost: async () => {
      await call('removeDhcpHost');
      return { entries: 0, reloaded: true };
    },
    recordPxeSessionStatus: async (input) => {
      await call('recordPxeSessionStatus', `status ${input.status}`);
      statuses.push(input);
    },
  };

  return {
    activities,
    /** Every attempt, in the order the worker ran them. */
    calls,
    /** What each successful status write carried. */
    statuses,
    /** Resolves when the activity with a fault is first called. */
    reached: (name: PxeSagaActivity): Promise<void> => reached.get(name) ?? Promise.reject(new Error(`${name} has no fault: nothing waits for it`)),
  };
}
