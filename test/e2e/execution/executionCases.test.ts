import type { TestWorkflowEnvironment } from '@temporalio/testing';
import request from 'supertest';
import { startExecutorHarnesses, type ExecutorHarnesses } from '../../helpers/executionPools';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';
import { expectedShape, loadCases } from '../../cases/loadCases';

let env: TestWorkflowEnvironment;
let infra: Infra;
let harnesses: ExecutorHarnesses | undefined;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  harnesses = await startExecutorHarnesses(env, infra);
});
afterAll(async () => {
  await harnesses?.stop();
  await infra.close();
  await env.teardown();
});

const cases = loadCases();

describe.each(['docker', 'local'] as const)('the test/cases folder through POST /api/v2/execute (%s executor)', (executor) => {
  it('matches every case, 100%', async () => {
    const api = harnesses![executor];
    const outcomes = [];
    for (const c of cases) {
      const res = await request(api.app).post('/api/v2/execute').set({ Authorization: `Bearer ${api.userKey}` })
        .send({ language: c.language, version: '*', files: [c.file], stdin: c.stdin ?? '', args: c.args ?? [] });
      outcomes.push({ name: c.name, status: res.status, executor: res.headers['x-sessionflow-executor'], body: res.body });
    }
    expect(outcomes).toEqual(cases.map((c) => ({ name: c.name, status: 200, executor, body: expect.objectContaining(expectedShape(c)) })));
  });
});
