// The compute session workflow's own code on the real dev server, with a main worker and one
// worker per node queue; its activities are the recording fakes of
// test/helpers/recordingCompute.ts, there only to inject faults and see the calls
// (test/e2e/compute runs the real ones on two Docker engines). Timers come from the input, so
// tests wait seconds.
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import {
  checkAndTransitUpdate,
  completeUpdate,
  computeStateQuery,
  destroyUpdate,
  executeUpdate,
  interruptUpdate,
  logsUpdate,
  modifyUpdate,
  restartUpdate,
  wakeSignal,
  type ComputeSessionInput,
  type ComputeSessionState,
} from '../../domain/compute/compute';
import { makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import type { ComputeStatus } from '../../domain/compute/status';
import type { Activities } from '../../activities';
import type { computeSessionWorkflow } from '../../workflows/compute/computeSession';
import { eventually } from '../helpers/api';
import { recordingCompute, type ComputeFaults } from '../helpers/recordingCompute';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await connectTestEnv();
});
afterAll(async () => {
  await env.teardown();
});

type Session = WorkflowHandle<typeof computeSessionWorkflow>;
type Compute = ReturnType<typeof recordingCompute>;

function sessionInput(size: number, extra: Partial<ComputeSessionInput> = {}): ComputeSessionInput {
  return {
    sessionId: randomUUID(), ownerId: randomUUID(), name: 'my-tf-session', image: 'python:3.11', imageReference: '127.0.0.1:5000/sessionflow/kernel-python:bookworm',
    scalingGroup: 'default', clusterMode: 'single-node',
    kernels: Array.from({ length: size }, (_, i) => ({ kernelId: randomUUID(), role: i === 0 ? 'main' : 'sub', idx: i === 0 ? 1 : i, hostname: i === 0 ? 'main1' : `sub${i}` })),
    resources: { cpuMillis: 1000, memoryBytes: 256 * 2 ** 20, gpu: 0 }, env: {}, vfolders: [], dependencies: [], priority: 0,
    timings: { agentTimeoutSeconds: 2, pendingRetrySeconds: 1 },
    ...extra,
  };
}

interface Options {
  faults?: ComputeFaults;
  /** Nodes whose worker runs; a node left out is dead. */
  liveNodes?: string[];
}

/** Runs one session on workers of its own (main + a worker per live node); ends the workflow if the test left it running. */
async function withSession(input: ComputeSessionInput, options: Options, test: (session: Session, compute: Compute, stopNode: (name: string) => Promise<void>) => Promise<void>): Promise<void> {
  const nodes = ['node-a', 'node-b'].map((name) => ({ name, taskQueue: uniqueTaskQueue(name) }));
  const compute = recordingCompute(input, nodes, options.faults);
  const taskQueue = uniqueTaskQueue('compute-session');
  const main = await createTestWorker(env, taskQueue, compute.control as unknown as Activities);
  const live = nodes.filter((node) => (options.liveNodes ?? ['node-a', 'node-b']).includes(node.name));
  const nodeWorkers = await Promise.all(live.map((node) =>
    Worker.create({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: node.taskQueue, activities: compute.nodeActivities(node.name) })));
  const running = [main, ...nodeWorkers].map((worker) => worker.run());
  const stopNode = async (name: string) => {
    const index = live.findIndex((node) => node.name === name);
    nodeWorkers[index]!.shutdown();
    await running[index + 1];
  };
  try {
    const session = await env.client.workflow.start<typeof computeSessionWorkflow>('computeSessionWorkflow', { workflowId: makeComputeSessionWorkflowId(input.sessionId), taskQueue, args: [input] });
    try {
      await test(session, compute, stopNode);
    } finally {
      await session.terminate('test finished').catch(() => undefined);
    }
  } finally {
    for (const worker of [main, ...nodeWorkers]) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.all(running);
  }
}

const untilStatus = (session: Session, status: ComputeStatus, timeoutMs = 20_000) =>
  eventually(() => session.query(computeStateQuery), (state) => state.status === status, timeoutMs);
const destroy = (session: Session, forced = false) => session.executeUpdate(destroyUpdate, { args: [{ forced }] });
const creation: ComputeStatus[] = ['SCHEDULED', 'PREPARING', 'PULLING', 'PREPARED', 'CREATING', 'RUNNING'];

describe('computeSessionWorkflow', () => {
  it('goes PENDING → SCHEDULED → PREPARING → PULLING → PREPARED → CREATING → RUNNING, and a destroy ends it TERMINATED with its kernels removed', async () => {
    await withSession(sessionInput(1), {}, async (session, compute) => {
      expect((await untilStatus(session, 'RUNNING')).kernels).toEqual([expect.objectContaining({ hostname: 'main1', node: 'node-a', containerId: 'c-node-a-main1' })]);
      expect(compute.statuses()).toEqual(creation);
      expect(compute.calls).toEqual(expect.arrayContaining(['node-a: pull 127.0.0.1:5000/sessionflow/kernel-python:bookworm', 'node-a: create main1 hosts=main1']));
      expect(compute.calls).not.toContain('key pair');

      const after = await destroy(session);
      expect(['TERMINATING', 'TERMINATED']).toContain(after.status);
      const result = await session.result();
      expect(result.status).toBe('TERMINATED');
      expect(compute.statuses()).toEqual([...creation, 'TERMINATING', 'TERMINATED']);
      expect(compute.calls).toEqual(expect.arrayContaining(['node-a: remove main1', 'wake']));
      expect(compute.containers.size).toBe(0);
    });
  });

  it('makes a single-node cluster on one node, on a private network, with the shared key pair and the peer list', async () => {
    await withSession(sessionInput(3), {}, async (session, compute) => {
      await untilStatus(session, 'RUNNING');
      expect(compute.calls).toEqual(expect.arrayContaining(['key pair', 'node-a: network']));
      const creates = compute.calls.filter((call) => call.includes(': create ')).sort();
      expect(creates).toEqual(['main1', 'sub1', 'sub2'].map((host) => expect.stringMatching(new RegExp(`^node-a: create ${host} on net-\\w+ hosts=main1,sub1,sub2 with key$`))));
      await destroy(session);
      await session.result();
      expect(compute.calls).toEqual(expect.arrayContaining(['node-a: remove main1,sub1,sub2', 'node-a: remove network']));
    });
  });

  it('spreads a multi-node cluster over the nodes and pulls the image on each', async () => {
    await withSession(sessionInput(2, { clusterMode: 'multi-node' }), {}, async (session, compute) => {
      const running = await untilStatus(session, 'RUNNING');
      expect(running.kernels.map((k) => k.node)).toEqual(['node-a', 'node-b']);
      expect(compute.calls.filter((call) => call.includes(': pull '))).toHaveLength(2);
      expect(compute.calls).not.toContain('node-a: network');
    });
  });

  it('is all or nothing: a kernel that cannot be made removes every kernel made, and the session ends ERROR naming it and the cause', async () => {
    await withSession(sessionInput(3), { faults: { failCreate: ['sub2'] } }, async (session, compute) => {
      const result = await session.result();
      expect(result.status).toBe('ERROR');
      expect(result.reason).toMatch(/^ImageNotFound: kernel sub2 on node node-a, creating it: ImageNotFound: no image for sub2/);
      expect(compute.calls).toEqual(expect.arrayContaining(['node-a: remove main1,sub1', 'node-a: remove network']));
      expect(compute.containers.size).toBe(0);
      expect(compute.statuses()).toEqual(['SCHEDULED', 'PREPARING', 'PULLING', 'PREPARED', 'CREATING', 'ERROR']);
    });
  });

  it('ends ERROR with the exit code when a bootstrap script fails, and removes the kernel', async () => {
    await withSession(sessionInput(1), { faults: { bootstrap: { main1: 3 } } }, async (session, compute) => {
      const result = await session.result();
      expect(result).toMatchObject({ status: 'ERROR', reason: expect.stringMatching(/BootstrapFailed: .*main1.*exited with 3/) });
      expect(compute.containers.size).toBe(0);
    });
  });

  it('names AgentNotAvailable when the chosen node\'s worker takes no task', async () => {
    await withSession(sessionInput(1), { liveNodes: ['node-b'] }, async (session) => {
      const result = await session.result();
      expect(result).toMatchObject({ status: 'ERROR', reason: expect.stringMatching(/^AgentNotAvailable: kernel main1: node node-a took no task within 2 s/) });
    });
  });

  it('stays PENDING while there is no room, and is placed when woken', async () => {
    await withSession(sessionInput(1, { timings: { pendingRetrySeconds: 3600, agentTimeoutSeconds: 2 } }), { faults: { schedule: ['wait', 'placed'] } }, async (session, compute) => {
      await eventually(async () => compute.calls.filter((c) => c.startsWith('schedule')).length, (n) => n >= 1);
      expect((await session.query(computeStateQuery)).status).toBe('PENDING');
      await session.signal(wakeSignal);
      await untilStatus(session, 'RUNNING');
      expect(compute.calls.filter((c) => c.startsWith('schedule'))).toEqual(['schedule wait', 'schedule placed']);
    });
  });

  it('is CANCELLED when still PENDING at max_wait', async () => {
    const input = sessionInput(1);
    await withSession({ ...input, pendingDeadline: Date.now() + 1500 }, { faults: { schedule: ['wait'] } }, async (session, compute) => {
      const result = await session.result();
      expect(result).toMatchObject({ status: 'CANCELLED', reason: 'still PENDING when max_wait ran out' });
      expect(compute.statuses()).toEqual(['CANCELLED']);
    });
  });

  it('ends ERROR with InsufficientResources when no node could ever hold it', async () => {
    await withSession(sessionInput(1), { faults: { schedule: ['never'] } }, async (session) => {
      expect(await session.result()).toMatchObject({ status: 'ERROR', reason: expect.stringMatching(/^InsufficientResources: /) });
    });
  });

  it('is CANCELLED when a dependency failed, and waits while one still runs', async () => {
    await withSession(sessionInput(1, { dependencies: ['dep-1'] }), { faults: { dependencies: ['waiting', 'failed'] } }, async (session, compute) => {
      expect(await session.result()).toMatchObject({ status: 'CANCELLED', reason: 'dependency dep-1 ended ERROR' });
      expect(compute.calls.filter((c) => c.startsWith('schedule'))).toEqual([]);
    });
  });

  it('is CANCELLED by a destroy while PENDING', async () => {
    await withSession(sessionInput(1), { faults: { schedule: ['wait'] } }, async (session) => {
      await eventually(() => session.query(computeStateQuery), (s) => s.status === 'PENDING');
      expect((await destroy(session)).status).toBe('CANCELLED');
    });
  });

  it('refuses a plain destroy while its kernels are being made (InvalidSessionState with the status); a forced one removes them and ends TERMINATED', async () => {
    await withSession(sessionInput(2), { faults: { bootstrap: { sub1: 'hang' } } }, async (session, compute) => {
      await untilStatus(session, 'CREATING');
      await eventually(async () => compute.containers.size, (n) => n === 2);
      await expect(destroy(session)).rejects.toMatchObject({ cause: { type: 'InvalidSessionState', details: [expect.objectContaining({ current_status: 'CREATING' })] } });
      const after = await destroy(session, true);
      expect(['TERMINATING', 'TERMINATED']).toContain(after.status);
      expect((await session.result()).status).toBe('TERMINATED');
      expect(compute.containers.size).toBe(0);
    });
  });

  it('restarts every kernel: RUNNING → RESTARTING → RUNNING; a restart of a session not RUNNING is InvalidSessionState', async () => {
    await withSession(sessionInput(2), {}, async (session, compute) => {
      await untilStatus(session, 'RUNNING');
      const after = await session.executeUpdate(restartUpdate);
      expect(after.status).toBe('RUNNING');
      expect([...compute.containers.values()].map((c) => c.restarts)).toEqual([1, 1]);
      expect(compute.statuses().slice(-2)).toEqual(['RESTARTING', 'RUNNING']);
      await destroy(session);
      await expect(session.executeUpdate(restartUpdate)).rejects.toBeDefined();
    });
  });

  it('renames and modifies, refusing a name taken by another live session', async () => {
    await withSession(sessionInput(1), {}, async (session, compute) => {
      await untilStatus(session, 'RUNNING');
      const state = await session.executeUpdate(modifyUpdate, { args: [{ name: 'renamed', priority: 5 }] });
      expect(state).toMatchObject({ name: 'renamed', priority: 5 });
      expect(compute.calls).toContain('modify {"name":"renamed","priority":5}');
      await expect(session.executeUpdate(modifyUpdate, { args: [{ name: 'taken' }] })).rejects.toMatchObject({ cause: { type: 'SessionNameTaken' } });
      expect((await session.query(computeStateQuery)).name).toBe('renamed');
    });
  });

  it('ends TERMINATED when idle for its idle timeout', async () => {
    await withSession(sessionInput(1, { idleTimeoutSeconds: 1 }), {}, async (session) => {
      expect(await session.result()).toMatchObject({ status: 'TERMINATED', reason: 'idle for 1 s' });
    });
  });

  it('counts a modification as activity, and a new idle timeout takes effect at once', async () => {
    await withSession(sessionInput(1, { idleTimeoutSeconds: 3 }), {}, async (session) => {
      await untilStatus(session, 'RUNNING');
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await session.executeUpdate(modifyUpdate, { args: [{ priority: 1 }] });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // 4 s after it started running, but 2 s after its last activity: still running.
      expect((await session.query(computeStateQuery)).status).toBe('RUNNING');
      await session.executeUpdate(modifyUpdate, { args: [{ idleTimeoutSeconds: 1 }] });
      expect(await session.result()).toMatchObject({ status: 'TERMINATED', reason: 'idle for 1 s' });
    });
  });

  it('ends TERMINATED at its max lifetime', async () => {
    await withSession(sessionInput(1, { maxLifetimeSeconds: 1 }), {}, async (session) => {
      expect(await session.result()).toMatchObject({ status: 'TERMINATED', reason: 'max lifetime of 1 s reached' });
    });
  });

  it('check and transit: a container gone ends the session ERROR, after removing what is left', async () => {
    await withSession(sessionInput(2), {}, async (session, compute) => {
      await untilStatus(session, 'RUNNING');
      const healthy: ComputeSessionState = await session.executeUpdate(checkAndTransitUpdate, { args: [{ reason: 'test' }] });
      expect(healthy.status).toBe('RUNNING');
      compute.containers.delete('c-node-a-sub1');
      const after = await session.executeUpdate(checkAndTransitUpdate, { args: [{ reason: 'test' }] });
      expect(after).toMatchObject({ status: 'ERROR', reason: "kernel sub1's container is missing (check: test)" });
      expect(compute.containers.size).toBe(0);
    });
  });

  it('check and transit: a node that takes no task any more ends the session ERROR with AgentNotAvailable', async () => {
    await withSession(sessionInput(1), {}, async (session, _compute, stopNode) => {
      await untilStatus(session, 'RUNNING');
      await stopNode('node-a');
      const after = await session.executeUpdate(checkAndTransitUpdate, { args: [{ reason: 'node node-a has stopped heartbeating' }] });
      expect(after).toMatchObject({ status: 'ERROR', reason: expect.stringMatching(/^AgentNotAvailable: kernel main1: node node-a took no task within 2 s while checking its container/) });
    });
  });

  it('waits PENDING for its start time, then runs', async () => {
    // Far enough ahead that a loaded machine's slow start cannot reach it before the look.
    await withSession(sessionInput(1, { startsAt: Date.now() + 8000 }), {}, async (session, compute) => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await session.query(computeStateQuery)).status).toBe('PENDING');
      expect(compute.calls.filter((c) => c.startsWith('schedule'))).toEqual([]);
      await untilStatus(session, 'RUNNING');
    });
  });

  it('continues as new when its history is long, keeping its kernels and settings', async () => {
    await withSession(sessionInput(1, { timings: { agentTimeoutSeconds: 2, pendingRetrySeconds: 1, historyLimit: 40 } }), {}, async (session, compute) => {
      await untilStatus(session, 'RUNNING');
      const firstRun = (await session.describe()).runId;
      for (let i = 0; i < 8; i++) await session.executeUpdate(modifyUpdate, { args: [{ priority: i }] });
      await session.executeUpdate(checkAndTransitUpdate, { args: [{ reason: 'nudge' }] });
      const fresh = env.client.workflow.getHandle<typeof computeSessionWorkflow>(session.workflowId);
      await eventually(async () => (await fresh.describe()).runId, (runId) => runId !== firstRun);
      expect(await fresh.query(computeStateQuery)).toMatchObject({ status: 'RUNNING', priority: 7, kernels: [expect.objectContaining({ containerId: 'c-node-a-main1' })] });
      await fresh.executeUpdate(destroyUpdate, { args: [{ forced: false }] });
      expect((await fresh.result()).status).toBe('TERMINATED');
      expect(compute.containers.size).toBe(0);
    });
  });

  describe('working in the main kernel', () => {
    it('executes, interrupts and completes in the main kernel of a RUNNING cluster, on its node', async () => {
      await withSession(sessionInput(2, { clusterMode: 'multi-node' }), {}, async (session, compute) => {
        await untilStatus(session, 'RUNNING');
        const run = await session.executeUpdate(executeUpdate, { args: [{ runId: 'run-123', code: 'x = 1', stdin: 'Alice\n', timeoutMs: 10_000 }] });
        expect(run).toMatchObject({ runId: 'run-123', status: 'finished', exitCode: 0, stdout: 'ran x = 1 with Alice\n', result: 5 });
        expect(await session.executeUpdate(interruptUpdate, { args: [{ runId: 'run-123' }] })).toEqual({ runId: 'run-123', running: false });
        expect(await session.executeUpdate(completeUpdate, { args: [{ code: 'import o' }] })).toEqual({ candidates: ['import o_candidate'] });
        expect(compute.calls).toEqual(expect.arrayContaining(['node-a: execute run-123 in main1', 'node-a: interrupt run-123 in main1', 'node-a: complete import o']));
        expect(compute.calls.some((call) => call.startsWith('node-b: execute'))).toBe(false);
      });
    });

    it('refuses to execute or complete unless RUNNING (InvalidSessionState), and answers an interrupt there as done without calling the kernel', async () => {
      await withSession(sessionInput(1), { faults: { schedule: ['wait'] } }, async (session, compute) => {
        await untilStatus(session, 'PENDING');
        await expect(session.executeUpdate(executeUpdate, { args: [{ runId: 'r', code: '1', timeoutMs: 1000 }] })).rejects.toMatchObject({ cause: { type: 'InvalidSessionState' } });
        await expect(session.executeUpdate(completeUpdate, { args: [{ code: 'o' }] })).rejects.toMatchObject({ cause: { type: 'InvalidSessionState' } });
        expect(await session.executeUpdate(interruptUpdate, { args: [{ runId: 'r' }] })).toEqual({ runId: 'r', running: false });
        expect(compute.calls.filter((call) => /execute|interrupt|complete/.test(call))).toEqual([]);
      });
    });

    it('gives the kernel\'s refusal to the client by its name, and stays RUNNING', async () => {
      await withSession(sessionInput(1), { faults: { executeFails: 'ExecutionTimeout' } }, async (session) => {
        await untilStatus(session, 'RUNNING');
        await expect(session.executeUpdate(executeUpdate, { args: [{ runId: 'slow', code: 'import time; time.sleep(60)', timeoutMs: 10_000 }] }))
          .rejects.toMatchObject({ cause: { type: 'ExecutionTimeout' } });
        expect((await session.query(computeStateQuery)).status).toBe('RUNNING');
      });
    });

    it('does not idle out while code runs, and idles out its idle timeout after the run ended', async () => {
      await withSession(sessionInput(1, { idleTimeoutSeconds: 2 }), { faults: { executeMs: 4000 } }, async (session) => {
        await untilStatus(session, 'RUNNING');
        const run = await session.executeUpdate(executeUpdate, { args: [{ runId: 'long', code: 'work()', timeoutMs: 10_000 }] });
        expect(run.exitCode).toBe(0);
        expect((await session.query(computeStateQuery)).status).toBe('RUNNING');
        expect(await session.result()).toMatchObject({ status: 'TERMINATED', reason: 'idle for 2 s' });
      });
    });
  });

  describe('container logs', () => {
    it('reads the logs of every kernel on its node, labelled, or of one kernel, passing since and until on', async () => {
      await withSession(sessionInput(2, { clusterMode: 'multi-node' }), {}, async (session, compute) => {
        const { kernels } = await untilStatus(session, 'RUNNING');
        const all = await session.executeUpdate(logsUpdate, { args: [{}] });
        expect(all.map((k) => [k.hostname, k.lines.map((line) => line.text)])).toEqual([['main1', ['hello from main1']], ['sub1', ['hello from sub1']]]);
        expect(all[0]).toMatchObject({ kernelId: kernels[0]!.kernelId, truncated: false });
        const one = await session.executeUpdate(logsUpdate, { args: [{ kernelId: kernels[1]!.kernelId, since: 100, until: 200 }] });
        expect(one.map((k) => k.hostname)).toEqual(['sub1']);
        expect(compute.calls).toEqual(expect.arrayContaining(['node-a: logs main1 cap 262144', 'node-b: logs sub1 cap 262144', 'node-b: logs sub1 since 100 until 200 cap 262144']));
      });
    });

    it('refuses an unknown kernel (NotFound) and a session without kernels (InvalidSessionState), and an ended one', async () => {
      await withSession(sessionInput(1), { faults: { schedule: ['wait', 'wait', 'placed'] } }, async (session) => {
        await untilStatus(session, 'PENDING');
        await expect(session.executeUpdate(logsUpdate, { args: [{}] })).rejects.toMatchObject({ cause: { type: 'InvalidSessionState' } });
        await untilStatus(session, 'RUNNING');
        await expect(session.executeUpdate(logsUpdate, { args: [{ kernelId: randomUUID() }] })).rejects.toMatchObject({ cause: { type: 'NotFound' } });
        await destroy(session);
        await session.result();
        await expect(session.executeUpdate(logsUpdate, { args: [{}] })).rejects.toThrow();
      });
    });

    it('keeps the last logs of every kernel before removing them when the session ends', async () => {
      await withSession(sessionInput(2), {}, async (session, compute) => {
        const { kernels } = await untilStatus(session, 'RUNNING');
        await destroy(session);
        expect((await session.result()).status).toBe('TERMINATED');
        const kept = compute.calls.indexOf('keep logs main1,sub1');
        expect(kept).toBeGreaterThan(-1);
        expect(kept).toBeLessThan(compute.calls.indexOf('node-a: remove main1,sub1'));
        expect(compute.keptLogs.get(kernels[1]!.kernelId)).toEqual({ lines: [expect.objectContaining({ text: 'hello from sub1' })], truncated: false });
        expect(compute.calls).toContain('node-a: logs main1 cap 65536');
      });
    });

    it('keeps the logs of a failed session before removing its kernels (ERROR after a failed bootstrap)', async () => {
      await withSession(sessionInput(1), { faults: { bootstrap: { main1: 3 } } }, async (session, compute) => {
        expect((await session.result()).status).toBe('ERROR');
        expect(compute.calls.indexOf('keep logs main1')).toBeLessThan(compute.calls.indexOf('node-a: remove main1'));
        expect(compute.calls).toContain('keep logs main1');
      });
    });

    it('ends the session all the same when the node cannot read the logs', async () => {
      await withSession(sessionInput(1), { faults: { logsFail: true } }, async (session, compute) => {
        await untilStatus(session, 'RUNNING');
        await destroy(session);
        expect((await session.result()).status).toBe('TERMINATED');
        expect(compute.calls).toEqual(expect.arrayContaining(['keep logs none', 'node-a: remove main1']));
        expect(compute.containers.size).toBe(0);
      });
    });
  });
});
