import type { Client, WorkflowClient } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createTemporalExecutor } from '../../../api/execution/executors';
import { findRuntime, makePoolWorkflowId, poolStateQuery, type ExecutionJob, type PoolState } from '../../../domain/execution/execution';
import { poolSettingsFrom } from '../../../platform/executionSettings';
import { eventually, startApiHarness, type ApiHarness } from '../../helpers/api';
import { removeExecutionPools, spawnExecutionWorker } from '../../helpers/executionPools';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv, createTestExecutionWorker } from '../../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let lostWorker: ChildProcess | undefined;
let standIn: Worker | undefined;
let standInRunning: Promise<void> | undefined;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  // No execution worker in this process: the first one is a child process the test kills.
  api = await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: false, EXECUTION_READY_SESSIONS: 0 }, { executionWorker: false });
});
afterAll(async () => {
  lostWorker?.kill('SIGKILL');
  standIn?.shutdown();
  await standInRunning;
  await removeExecutionPools(env.client, infra, api.taskQueue);
  await api.stop();
  await infra.close();
  await env.teardown();
});

const execute = (body: Record<string, unknown>) =>
  request(api.app).post('/api/v2/execute').set({ Authorization: `Bearer ${api.userKey}` }).send({ language: 'python', version: '*', ...body });
// The first request starts the pool: until then there is nothing to ask.
const poolState = () => env.client.workflow.getHandle(makePoolWorkflowId(api.taskQueue, 'python')).query(poolStateQuery)
  .catch((): Pick<PoolState, 'containers'> => ({ containers: [] }));
const leased = (state: Pick<PoolState, 'containers'>) => state.containers.find((c) => c.state === 'leased');
const readInContainer = (containerId: string, path: string) =>
  infra.docker.getContainer(containerId).exec({ Cmd: ['cat', path], AttachStdout: true })
    .then((exec) => exec.start({ hijack: true, stdin: false }))
    .then((stream) => new Promise<string>((resolve) => {
      let text = '';
      stream.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); });
      stream.on('end', () => resolve(text));
    }));

describe('a worker killed in the middle of an execution', () => {
  it('gives the client the result of the one run once another worker takes over, and leaves no container behind', async () => {
    lostWorker = await spawnExecutionWorker(api.taskQueue);
    // Appends a mark, then takes long enough for the worker to be killed while it runs.
    const program = 'import time\nopen("runs", "a").write("x")\ntime.sleep(2)\nprint(len(open("runs").read()))';
    const answer = execute({ files: [{ content: program }], session_id: 'worker-loss', run_timeout: 10_000 }).then((res) => res);

    const running = await eventually(poolState, (state) => leased(state) !== undefined);
    const containerId = leased(running)!.containerId;
    await eventually(() => readInContainer(containerId, '/work/session/runs').catch(() => ''), (text) => text.includes('x'));
    lostWorker.kill('SIGKILL');

    // Another worker picks the execution up when Temporal gives up on the lost one's task.
    standIn = await createTestExecutionWorker(env, api.taskQueue, infra.activities);
    standInRunning = standIn.run();
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body.run).toMatchObject({ stdout: '1\n', code: 0 });

    // The program ran once: the next execution of the session finds one mark and adds the second.
    const next = await execute({ files: [{ content: 'open("runs", "a").write("x")\nprint(len(open("runs").read()))' }], session_id: 'worker-loss' }).expect(200);
    expect(next.body.run.stdout).toBe('2\n');
    const state = await poolState();
    expect(state.containers).toEqual([expect.objectContaining({ containerId, state: 'idle-session' })]);
  }, 90_000);

  it('answers ContainerLost when the container vanishes mid-run, and retires it', async () => {
    const answer = execute({ files: [{ content: 'import time\nopen("/tmp/started", "w").write("x")\ntime.sleep(5)\nprint("never")' }] }).then((res) => res);
    const running = await eventually(poolState, (state) => leased(state) !== undefined);
    const containerId = leased(running)!.containerId;
    // Once the program runs: a container lost before that would be passed over instead.
    await eventually(() => readInContainer(containerId, '/tmp/started').catch(() => ''), (text) => text.includes('x'));
    await infra.docker.getContainer(containerId).remove({ force: true });

    const res = await answer;
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: 'ContainerLost' });
    const state = await eventually(poolState, (s) => !s.containers.some((c) => c.containerId === containerId));
    expect(state.containers.map((c) => c.containerId)).not.toContain(containerId);
  }, 60_000);
});

describe('an execution that cannot start', () => {
  it('gives its container back to the pool at once instead of after the lease expires', async () => {
    // Temporal refuses the start (injected); the acquire and the release are real.
    const workflow = Object.assign(Object.create(env.client.workflow) as WorkflowClient, { start: () => Promise.reject(new Error('start refused')) });
    const executor = createTemporalExecutor({
      temporal: { workflow } as unknown as Client, pool: infra.pool, taskQueue: api.taskQueue, historyOutputCap: 4096, eagerStart: false,
      poolSettings: (runtime) => ({ ...poolSettingsFrom(infra.config, runtime), readySessions: 0 }),
    });
    const bash = findRuntime('bash', '*')!;
    const job: ExecutionJob = {
      requestId: randomUUID(), language: bash.language, version: bash.version, files: [{ name: 'main.sh', content: Buffer.from('echo hi').toString('base64') }],
      stdin: '', args: [], outputLimit: 65_536, run: { command: bash.run, timeoutMs: 3000, memoryLimit: -1 },
    };
    await expect(executor.execute(job, api.userId)).rejects.toThrow('start refused');

    const pool = env.client.workflow.getHandle(makePoolWorkflowId(api.taskQueue, 'bash'));
    const state = await eventually(() => pool.query(poolStateQuery), (s) => s.containers.length === 1 && s.containers[0]!.state === 'ready');
    expect(state.containers).toEqual([expect.objectContaining({ state: 'ready' })]);
    expect(state.containers[0]!.leaseId).toBeUndefined();
  });
});
