import type { TestWorkflowEnvironment } from '@temporalio/testing';
import request from 'supertest';
import { createUserKey } from '../../../api/platform/auth';
import { makePoolWorkflowId } from '../../../domain/execution/execution';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { removeExecutionPools } from '../../helpers/executionPools';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * A pool continues as new every EXECUTION_LEASES_PER_RUN leases. Acquires that reach it while
 * its last task of a run completes are refused by the server ("unexpected workflow task
 * failure"): they go on to the next run, and the user never sees a 500 (seen in a soak run).
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra, { USE_LOCAL_EXECUTOR: false, EXECUTION_LEASES_PER_RUN: 2, EXECUTION_ACQUIRE_WAIT_MS: 30_000 });
});
afterAll(async () => {
  await removeExecutionPools(env.client, infra, api.taskQueue);
  await api.stop();
  await infra.close();
  await env.teardown();
});

it('answers every execution of a burst while its pool continues as new under it', async () => {
  const users = await Promise.all(Array.from({ length: 6 }, (_, i) => createUserKey(infra.pool, `pool-can-${Date.now().toString(36)}-${i}`, 'user', 'test')));
  // Six users, each one execution after another: fewer in flight than containers, so the pool
  // ends a run every two leases while the others' acquires arrive.
  const statuses = (await Promise.all(users.map(async ({ key }) => {
    const answers: (number | string)[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await request(api.app).post('/api/v2/execute').set({ Authorization: `Bearer ${key}` })
        .send({ language: 'python', version: '3', files: [{ content: `print(${i} * 2)` }] });
      answers.push(res.status === 200 ? 200 : `${res.status} ${JSON.stringify(res.body)}`);
    }
    return answers;
  }))).flat();
  expect(statuses).toEqual(Array(36).fill(200));
  // The burst did meet the pool's runs ending: it continued as new many times during it.
  const runs = [];
  for await (const run of env.client.workflow.list({ query: `WorkflowId='${makePoolWorkflowId(api.taskQueue, 'python')}'` })) runs.push(run.status.name);
  expect(runs.filter((status) => status === 'CONTINUED_AS_NEW').length).toBeGreaterThanOrEqual(5);
});
