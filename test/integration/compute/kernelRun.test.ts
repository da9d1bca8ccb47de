import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { execInKernel } from '../../../activities/compute/kernelExec';
import { createComputeNodeActivities, type KernelSpec } from '../../../activities/compute/node';
import { computeSecretsSealer } from '../../../activities/compute/secretStore';
import { kernelOutputLimitBytes } from '../../../domain/compute/compute';
import { createUserKey } from '../../../api/platform/auth';
import { eventually, removeComputeLeftovers } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';

/**
 * The kernel runner (activities/compute/kernelRunner.ts) in a real kernel on the main engine,
 * under the engine's runtime (gVisor), driven through the node activities as a node worker
 * runs them: one kernel for the file, one persistent namespace across the tests.
 */
let infra: Infra;
let activities: ReturnType<typeof createComputeNodeActivities>;
let ownerId: string;
let containerId: string;
const sessionId = randomUUID();
const env = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

beforeAll(async () => {
  infra = openInfra();
  activities = createComputeNodeActivities({
    docker: infra.docker, pool: infra.pool, instance: infra.config.SESSIONFLOW_INSTANCE, sealer: computeSecretsSealer(infra.config.COMPUTE_SECRETS_KEY),
    containerRuntime: infra.containerRuntime, registryAddress: infra.config.REGISTRY_ADDRESS,
  });
  ({ userId: ownerId } = await createUserKey(infra.pool, `kernel-${randomUUID().slice(0, 8)}`, 'user', 'test'));
  await run(activities.pullKernelImage, { reference: infra.config.COMPUTE_KERNEL_IMAGE });
  const spec: KernelSpec = {
    sessionId, ownerId, kernelId: randomUUID(), hostname: 'main1', role: 'main', idx: 1, imageReference: infra.config.COMPUTE_KERNEL_IMAGE,
    resources: { cpuMillis: 1000, memoryBytes: 256 * 1024 * 1024, gpu: 0 }, env: {}, vfolders: [], clusterHosts: ['main1'],
  };
  ({ containerId } = await run(activities.createKernel, spec));
  await eventually(async () => ((await run(activities.kernelBootstrapState, { containerId })).done ? true : undefined));
}, 180_000);
afterAll(async () => {
  await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, [sessionId], []);
  await infra.pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
  await infra.close();
});

const execute = (code: string, extra: { runId?: string; stdin?: string; timeoutMs?: number } = {}) =>
  run(activities.executeInKernel, { containerId, runId: extra.runId ?? randomUUID(), code, stdin: extra.stdin, timeoutMs: extra.timeoutMs ?? 30_000 });

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err: unknown = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('the kernel runner', () => {
  it('prints, answers with the value of result, and keeps variables for the next execution (seed 4.1)', async () => {
    const first = await execute("print('Hello, World!')\nresult = 2 + 2");
    expect(first).toMatchObject({ status: 'finished', exitCode: 0, stdout: 'Hello, World!\n', stderr: '', result: 4, truncated: false });
    const second = await execute('counter = result * 10\ncounter + 1');
    expect(second).toMatchObject({ exitCode: 0, result: 41, resultRepr: '41' });
    expect((await execute('[result, counter]')).result).toEqual([4, 40]);
  });

  it('answers a raised error with its traceback on stderr and exit code 1, and stays usable (seed 4.2)', async () => {
    const failed = await execute('1 / 0');
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toContain('ZeroDivisionError');
    expect(failed.stderr).not.toContain('kernel_runner.py');
    expect((await execute('result')).result).toBe(4);
  });

  it('feeds stdin given up front to input(), and ends input() past it with EOFError rather than waiting (seed 4.4)', async () => {
    const asked = await execute("name = input('Enter name: ')\nname", { stdin: 'Alice\n' });
    expect(asked).toMatchObject({ exitCode: 0, stdout: 'Enter name: ', result: 'Alice' });
    const more = await execute('input()', { stdin: '' });
    expect(more.exitCode).toBe(1);
    expect(more.stderr).toContain('EOFError');
  });

  it('interrupts a run past its timeout with ExecutionTimeout, and the kernel and its namespace stay usable (seed 4.3)', async () => {
    const timeout = await failureOf(execute('timed = "before"\nimport time; time.sleep(60)', { timeoutMs: 1500 }));
    expect(timeout).toMatchObject({ type: 'ExecutionTimeout', nonRetryable: true });
    expect((await execute('timed')).result).toBe('before');
  });

  it('interrupts a running run with KeyboardInterrupt, keeps the namespace, and treats interrupting it again or an unknown run as done (seed 5.1, 5.2)', async () => {
    const runId = `long-running-${randomUUID().slice(0, 8)}`;
    // Set by a run before: an interrupt may land before the run's first line.
    await execute('kept = "yes"');
    const running = execute('import time\nwhile True:\n    time.sleep(0.1)', { runId, timeoutMs: 60_000 });
    // Until the run has started, the interrupt finds it queued or not yet known: ask until it was running.
    await eventually(async () => {
      await run(activities.interruptKernelRun, { containerId, runId });
      return (await settled(running)) ? true : undefined;
    }, 30);
    const ended = await running;
    expect(ended.exitCode).toBe(1);
    expect(ended.stderr).toContain('KeyboardInterrupt');
    expect(ended.interrupted).toBe(true);
    expect(await run(activities.interruptKernelRun, { containerId, runId })).toEqual({ runId, running: false });
    expect(await run(activities.interruptKernelRun, { containerId, runId: 'completed-run' })).toEqual({ runId: 'completed-run', running: false });
    expect((await execute('kept')).result).toBe('yes');
  });

  it('runs code given twice under one run id once, answering the second time from memory', async () => {
    await execute('runs = 0');
    const runId = randomUUID();
    const first = await execute('runs += 1\nruns', { runId });
    const again = await execute('runs += 1\nruns', { runId });
    expect(again).toEqual(first);
    expect((await execute('runs')).result).toBe(1);
  });

  it('joins a run going on under the same id, and refuses another id while it runs with InvalidSessionState', async () => {
    await execute('joined = 0');
    const runId = randomUUID();
    const first = execute('import time\ntime.sleep(2)\njoined += 1\njoined', { runId });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const busy = await failureOf(execute('1'));
    expect(busy).toMatchObject({ type: 'InvalidSessionState' });
    const retried = await execute('import time\ntime.sleep(2)\njoined += 1\njoined', { runId });
    expect(retried).toEqual(await first);
    expect((await execute('joined')).result).toBe(1);
  });

  it('reaches the kernel again after it restarted (a new relay; the namespace is gone, the kernel is not)', async () => {
    await execute('before_restart = 1');
    await infra.docker.getContainer(containerId).restart({ t: 1 });
    const after = await eventually(async () => execute("'before_restart' in dir()").catch(() => undefined), 60);
    expect(after.result).toBe(false);
    await execute('result = 4');
  });

  it('gives up on a relay that went silent (its process stopped) rather than waiting out the run, and opens a new one for the next call', async () => {
    await execute('survives_freeze = 1');
    const signalRelay = async (signal: string) => {
      const signalled = await run(() => execInKernel(infra.docker, containerId, { cmd: ['pkill', `-${signal}`, '-f', 'kernel_runner.py relay'], stdout: new PassThrough().resume(), waitMs: 10_000 }));
      expect(await signalled.exitCode()).toBe(0);
    };
    let frozen: unknown;
    try {
      await signalRelay('STOP');
      frozen = await execute('1', { timeoutMs: 120_000 }).then(() => undefined, (err: unknown) => err);
    } finally {
      await signalRelay('KILL');
    }
    // A plain error the activity's retry covers, not the run's ExecutionTimeout after its two minutes.
    expect(frozen).toBeInstanceOf(Error);
    expect(frozen).not.toBeInstanceOf(ApplicationFailure);
    expect(String(frozen)).toContain('stopped answering');
    expect((await execute('survives_freeze')).result).toBe(1);
  }, 90_000);

  it('keeps a run going through a pause of its kernel (a commit pauses it) longer than a silent relay is given', async () => {
    const running = execute('import time\ntime.sleep(4)\npaused_through = 1\npaused_through', { timeoutMs: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await infra.docker.getContainer(containerId).pause();
    try {
      await new Promise((resolve) => setTimeout(resolve, 12_000));
    } finally {
      await infra.docker.getContainer(containerId).unpause();
    }
    expect((await running).result).toBe(1);
  }, 90_000);

  it('caps each output stream and says it truncated', async () => {
    const long = await execute(`print('x' * ${kernelOutputLimitBytes * 2})`);
    expect(long.stdout.length).toBe(kernelOutputLimitBytes);
    expect(long.truncated).toBe(true);
  });

  it('completes module names after import and names of the namespace', async () => {
    expect((await run(activities.completeInKernel, { containerId, code: 'import o' })).candidates).toContain('os');
    await execute('my_variable = 1');
    expect((await run(activities.completeInKernel, { containerId, code: 'my_va' })).candidates).toEqual(['my_variable']);
    // At a position inside the code, not its end.
    expect((await run(activities.completeInKernel, { containerId, code: 'my_va + 1', position: 5 })).candidates).toEqual(['my_variable']);
    await execute('import os');
    expect((await run(activities.completeInKernel, { containerId, code: 'os.pat' })).candidates).toContain('os.path');
  });
});

/** Whether the promise has settled, without waiting for it. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const outcome = await Promise.race([promise.then(() => 'done', () => 'done'), new Promise((resolve) => setTimeout(() => resolve(marker), 200))]);
  return outcome !== marker;
}
