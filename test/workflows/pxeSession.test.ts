// The saga's own code on the real dev server and a real worker; its activities are the
// recording fakes of test/helpers/recordingBootServer.ts, there only to inject faults and to
// see the calls (test/integration/pxeSaga.test.ts runs the real ones against a boot server).
// No time skipping: offline there is no time-skipping test server (it is a downloaded binary).
// The saga has no timers of its own; hanging and gated activities stand in for slow steps.
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { makePxeWorkflowId, pxeSessionStateQuery, stopPxeSessionUpdate, type PxeSessionState, type PxeStep } from '../../domain/pxe/pxe';
import type { ErrorCode } from '../../domain/shared/errors';
import type { pxeSessionWorkflow } from '../../workflows/pxe/pxeSession';
import { eventually } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { recordingBootServer, type Fault, type PxeSagaActivity } from '../helpers/recordingBootServer';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
});
afterAll(async () => {
  await infra.close();
  await env.teardown();
});

type Session = WorkflowHandle<typeof pxeSessionWorkflow>;
type BootServer = ReturnType<typeof recordingBootServer>;

/** Runs one session on a worker of its own with these faults; ends the workflow if the test left it running. */
async function withSession(faults: Partial<Record<PxeSagaActivity, Fault>>, test: (session: Session, bootServer: BootServer) => Promise<void>): Promise<void> {
  const bootServer = recordingBootServer(faults);
  const taskQueue = uniqueTaskQueue('pxe-session');
  const worker = await createTestWorker(env, taskQueue, { ...infra.activities, ...bootServer.activities });
  const machineId = randomUUID();
  await worker.runUntil(async () => {
    const session = await env.client.workflow.start<typeof pxeSessionWorkflow>('pxeSessionWorkflow', {
      workflowId: makePxeWorkflowId(machineId), taskQueue, args: [{ sessionId: randomUUID(), machineId, ownerId: randomUUID() }],
    });
    try {
      await test(session, bootServer);
    } finally {
      await session.terminate('test finished').catch(() => undefined);
    }
  });
}

const untilStatus = (session: Session, status: PxeSessionState['status']) =>
  eventually(() => session.query(pxeSessionStateQuery), (state) => state.status === status, 20_000);
const stop = (session: Session) => session.executeUpdate(stopPxeSessionUpdate, { args: [{}] });

const start = ['preparePxeSession', 'ensureSessionDisk', 'ensureIscsiTarget', 'writeTftpScript', 'addDhcpHost'];
const stopCalls = ['status STOPPING', 'removeDhcpHost', 'deleteTftpScript', 'removeIscsiTarget', 'removeSessionDisk', 'status STOPPED'];
const allSteps: PxeStep[] = ['disk', 'target', 'script', 'dhcp'];

describe('pxeSessionWorkflow', () => {
  it('sets up disk, target, script and DHCP entry in order and records ACTIVE; a stop undoes them in reverse and ends STOPPED', async () => {
    await withSession({}, async (session, bootServer) => {
      expect(await untilStatus(session, 'ACTIVE')).toEqual({ sessionId: expect.any(String), status: 'ACTIVE', done: allSteps });
      expect(bootServer.calls).toEqual([...start, 'status ACTIVE']);
      expect(bootServer.statuses[0]?.bootScript).toMatch(/^#!ipxe\n/);

      const stopped = await stop(session);
      expect(stopped).toMatchObject({ status: 'STOPPED', done: [] });
      expect(stopped.error).toBeUndefined();
      expect(await session.result()).toEqual(stopped);
      expect(bootServer.calls).toEqual([...start, 'status ACTIVE', ...stopCalls]);
      expect(bootServer.statuses.at(-1)).toMatchObject({ status: 'STOPPED', bootScript: null });
    });
  });

  // Each step registers its undo before it runs (it may fail halfway), so the failing step is undone too.
  const failures: [PxeStep, PxeSagaActivity, ErrorCode, string[]][] = [
    ['disk', 'ensureSessionDisk', 'ImageNotReady', ['removeSessionDisk']],
    ['target', 'ensureIscsiTarget', 'BootServerCommandFailed', ['removeIscsiTarget', 'removeSessionDisk']],
    ['script', 'writeTftpScript', 'BootServerCommandFailed', ['deleteTftpScript', 'removeIscsiTarget', 'removeSessionDisk']],
    ['dhcp', 'addDhcpHost', 'DhcpConfigInvalid', ['removeDhcpHost', 'deleteTftpScript', 'removeIscsiTarget', 'removeSessionDisk']],
  ];
  it.each(failures)('undoes the %s step and those before it, in reverse, when %s fails with %s, and ends FAILED naming the step and the cause', async (step, activity, type, undone) => {
    await withSession({ [activity]: { fails: type } }, async (session, bootServer) => {
      const state = await session.result();
      expect(state).toEqual({ sessionId: expect.any(String), status: 'FAILED', done: [], error: { type, step, message: `${activity} refused (injected)` } });
      const begun = start.slice(0, start.indexOf(activity) + 1);
      // A refusal by name is not retried: the failing activity ran once.
      expect(bootServer.calls).toEqual([...begun, ...undone, 'status FAILED']);
      expect(bootServer.statuses).toEqual([expect.objectContaining({ status: 'FAILED', error: state.error, bootScript: null })]);
    });
  });

  it('ends FAILED without undoing anything when the machine cannot be prepared', async () => {
    await withSession({ preparePxeSession: { fails: 'MachineNotFound' } }, async (session, bootServer) => {
      const state = await session.result();
      expect(state).toMatchObject({ status: 'FAILED', done: [], error: { type: 'MachineNotFound' } });
      expect(state.error?.step).toBeUndefined();
      expect(bootServer.calls).toEqual(['preparePxeSession', 'status FAILED']);
    });
  });

  it('retries a step whose first attempt fails on the way, and goes on to ACTIVE', async () => {
    await withSession({ ensureIscsiTarget: { failsOnce: true } }, async (session, bootServer) => {
      expect((await untilStatus(session, 'ACTIVE')).done).toEqual(allSteps);
      expect(bootServer.calls).toEqual(['preparePxeSession', 'ensureSessionDisk', 'ensureIscsiTarget', ...start.slice(2), 'status ACTIVE']);
      expect((await stop(session)).status).toBe('STOPPED');
    });
  });

  it('undoes every step begun when the start is cancelled, the one in flight too, and the cancellation cannot cut the undo short', async () => {
    let openUndo!: () => void;
    const undoMayFinish = new Promise<void>((resolve) => (openUndo = resolve));
    await withSession({ writeTftpScript: { hangs: true }, removeIscsiTarget: { waitsFor: undoMayFinish } }, async (session, bootServer) => {
      await bootServer.reached('writeTftpScript');
      await session.cancel();
      await bootServer.reached('removeIscsiTarget');
      // The workflow is cancelled, yet it waits for the undo in progress instead of abandoning it.
      expect(await session.query(pxeSessionStateQuery)).toMatchObject({ status: 'STARTING', done: ['disk', 'target'] });
      openUndo();
      const state = await session.result();
      expect(state).toMatchObject({ status: 'FAILED', done: [], error: { type: 'Cancelled', step: 'script' } });
      expect(bootServer.calls).toEqual([...start.slice(0, 4), 'deleteTftpScript', 'removeIscsiTarget', 'removeSessionDisk', 'status FAILED']);
    });
  });

  it('lets a stop asked for during the start wait for it, then undoes what it set up', async () => {
    let openDhcp!: () => void;
    const dhcpMayFinish = new Promise<void>((resolve) => (openDhcp = resolve));
    await withSession({ addDhcpHost: { waitsFor: dhcpMayFinish } }, async (session, bootServer) => {
      await bootServer.reached('addDhcpHost');
      const stopping = await session.startUpdate(stopPxeSessionUpdate, { args: [{}], waitForStage: 'ACCEPTED' });
      openDhcp();
      expect(await stopping.result()).toMatchObject({ status: 'STOPPED', done: [] });
      expect(bootServer.calls).toEqual([...start, 'status ACTIVE', ...stopCalls]);
    });
  });

  it('answers two stops with the same STOPPED state and undoes each step once', async () => {
    let openUndo!: () => void;
    const undoMayFinish = new Promise<void>((resolve) => (openUndo = resolve));
    await withSession({ removeIscsiTarget: { waitsFor: undoMayFinish } }, async (session, bootServer) => {
      await untilStatus(session, 'ACTIVE');
      const first = await session.startUpdate(stopPxeSessionUpdate, { args: [{}], waitForStage: 'ACCEPTED' });
      await bootServer.reached('removeIscsiTarget');
      // The second stop arrives while the first is tearing down.
      const second = await session.startUpdate(stopPxeSessionUpdate, { args: [{}], waitForStage: 'ACCEPTED' });
      openUndo();
      const [a, b] = await Promise.all([first.result(), second.result()]);
      expect(a).toMatchObject({ status: 'STOPPED', done: [] });
      expect(b).toEqual(a);
      expect(bootServer.calls).toEqual([...start, 'status ACTIVE', ...stopCalls]);
    });
  });

  it('ends FAILED naming what is left when an undo fails during a stop, and removes nothing beneath it', async () => {
    await withSession({ removeIscsiTarget: { fails: 'BootServerCommandFailed' } }, async (session, bootServer) => {
      await untilStatus(session, 'ACTIVE');
      const state = await stop(session);
      expect(state).toMatchObject({ status: 'FAILED', done: ['disk', 'target'], error: { type: 'BootServerCommandFailed', message: 'removeIscsiTarget refused (injected)' } });
      // The disk stays: the target that still exports it could not be removed.
      expect(bootServer.calls).toEqual([...start, 'status ACTIVE', 'status STOPPING', 'removeDhcpHost', 'deleteTftpScript', 'removeIscsiTarget', 'status FAILED']);
      expect(bootServer.statuses.at(-1)).toMatchObject({ status: 'FAILED', error: state.error });
    });
  });

  it('ends FAILED with the cause and what is left when undoing a failed start fails too', async () => {
    await withSession({ ensureIscsiTarget: { fails: 'BootServerCommandFailed' }, removeIscsiTarget: { fails: 'BootServerCommandFailed' } }, async (session, bootServer) => {
      const state = await session.result();
      expect(state).toMatchObject({
        status: 'FAILED', done: ['disk'],
        error: { type: 'BootServerCommandFailed', step: 'target', message: 'ensureIscsiTarget refused (injected); undoing it failed too: removeIscsiTarget refused (injected)' },
      });
      expect(bootServer.calls).toEqual(['preparePxeSession', 'ensureSessionDisk', 'ensureIscsiTarget', 'removeIscsiTarget', 'status FAILED']);
    });
  });

  it('retries an undo whose first attempt fails on the way, and the stop still ends STOPPED', async () => {
    await withSession({ deleteTftpScript: { failsOnce: true } }, async (session, bootServer) => {
      await untilStatus(session, 'ACTIVE');
      expect(await stop(session)).toMatchObject({ status: 'STOPPED', done: [] });
      expect(bootServer.calls.slice(start.length + 1)).toEqual(['status STOPPING', 'removeDhcpHost', 'deleteTftpScript', 'deleteTftpScript', 'removeIscsiTarget', 'removeSessionDisk', 'status STOPPED']);
    });
  });

  it('stops an ACTIVE session that is cancelled: the undo runs in reverse and the workflow returns STOPPED', async () => {
    await withSession({}, async (session, bootServer) => {
      await untilStatus(session, 'ACTIVE');
      await session.cancel();
      // The workflow completes (it is not reported cancelled): the session's end is a normal stop.
      expect(await session.result()).toMatchObject({ status: 'STOPPED', done: [] });
      expect(bootServer.calls).toEqual([...start, 'status ACTIVE', ...stopCalls]);
    });
  });
});
