import type { TestWorkflowEnvironment } from '@temporalio/testing';
import request from 'supertest';
import { makePoolWorkflowId, poolStateQuery } from '../../domain/execution';
import { eventually, startApiHarness, type ApiHarness } from '../helpers/api';
import { removeExecutionPools } from '../helpers/executionPools';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let leasedContainer: string | undefined;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  // A worker that dies mid-execution: the activity stops heartbeating and answers nothing
  // (it gives up after 12 s only so that this test's worker can shut down).
  const lostWorker = async ({ containerId }: { containerId: string }): Promise<never> => {
    leasedContainer = containerId;
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    throw new Error('the lost worker came back too late');
  };
  api = await startApiHarness(env, { ...infra, activities: { ...infra.activities, runInContainer: lostWorker } }, { USE_LOCAL_EXECUTOR: false, EXECUTION_READY_SESSIONS: 0 });
});
afterAll(async () => {
  await removeExecutionPools(env.client, infra, api.taskQueue);
  await api.stop();
  await infra.close();
  await env.teardown();
});

describe('a worker lost in the middle of an execution', () => {
  it('gives the client a clear error, not a hang, and leaves no container behind', async () => {
    const res = await request(api.app).post('/api/v2/execute').set({ Authorization: `Bearer ${api.userKey}` })
      .send({ language: 'python', version: '*', files: [{ content: 'print(1)' }] });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ code: 'ExecutionFailed', message: expect.stringMatching(/heartbeat/i) });

    const pool = env.client.workflow.getHandle(makePoolWorkflowId(api.taskQueue, 'python'));
    const state = await eventually(() => pool.query(poolStateQuery), (s) => s.containers.length === 0);
    expect(state.containers).toEqual([]);
    await eventually(() => infra.docker.getContainer(leasedContainer!).inspect().then(() => 'present', () => 'gone'), (v) => v === 'gone');
    await expect(infra.docker.getContainer(leasedContainer!).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});
