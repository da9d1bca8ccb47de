import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { domainFailure } from '../../domain/shared/errors';
import { selfCheckKind } from '../../domain/selfCheck/kind';
import { sessionStartOptions } from '../../domain/shared/kind';
import { OwnerId, SessionDetail, SessionKind, SessionStatus } from '../../domain/shared/searchAttributes';
import type { SelfCheckReport } from '../../domain/selfCheck/selfCheck';
import type { selfCheckWorkflow } from '../../workflows/selfCheck/selfCheck';
import { openInfra, type Infra } from '../helpers/infra';
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

async function runSelfCheck(activities: Infra['activities'], checks?: SelfCheckReport['checks'][number]['name'][]) {
  const taskQueue = uniqueTaskQueue('self-check');
  const worker = await createTestWorker(env, taskQueue, activities);
  const ownerId = randomUUID();
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof selfCheckWorkflow>(selfCheckKind.workflowType, {
      ...sessionStartOptions(selfCheckKind, { key: [randomUUID()], taskQueue, status: 'RUNNING', ownerId, summary: 'self-check test' }),
      args: [{ ownerId, checks }],
    });
    const report = await handle.result();
    const description = await handle.describe();
    return { report, description, ownerId };
  });
}

describe('selfCheckWorkflow', () => {
  it('passes with every check ok against the real infrastructure, and marks itself PASSED', async () => {
    const { report, description, ownerId } = await runSelfCheck(infra.activities);
    expect(report.status).toBe('PASSED');
    expect(report.checks.map((c) => c.name)).toEqual(['docker', 'container', 'database', 'registry']);
    expect(report.checks.every((c) => c.ok && c.durationMs >= 0 && c.detail.length > 0)).toBe(true);
    expect([description.typedSearchAttributes.get(SessionStatus), description.typedSearchAttributes.get(SessionDetail)]).toEqual(['ENDED', 'PASSED']);
    expect(description.typedSearchAttributes.get(SessionKind)).toBe('self-check');
    expect(description.typedSearchAttributes.get(OwnerId)).toBe(ownerId);
  });

  it('reports a refused registry push as a failed line without retrying it, and still runs the other checks', async () => {
    let pushAttempts = 0;
    const refusing = {
      ...infra.activities,
      pushAndDeleteProbeImage: async () => {
        pushAttempts++;
        throw domainFailure('RegistryPushError', 'denied: requested access to the resource is denied');
      },
    };
    const { report, description } = await runSelfCheck(refusing);
    expect(report.status).toBe('FAILED');
    const registry = report.checks.find((c) => c.name === 'registry');
    expect(registry).toMatchObject({ ok: false, error: { type: 'RegistryPushError', message: expect.stringContaining('denied') } });
    expect(pushAttempts).toBe(1);
    expect(report.checks.filter((c) => c.name !== 'registry').every((c) => c.ok)).toBe(true);
    expect([description.typedSearchAttributes.get(SessionStatus), description.typedSearchAttributes.get(SessionDetail)]).toEqual(['FAILED', 'FAILED']);
  });

  it('retries an infrastructure error before giving up on a check', async () => {
    let pings = 0;
    const flaky = {
      ...infra.activities,
      pingDocker: async () => {
        pings++;
        if (pings < 3) throw new Error('connect ECONNREFUSED /var/run/docker.sock');
        return infra.activities.pingDocker();
      },
    };
    const { report } = await runSelfCheck(flaky, ['docker']);
    expect(pings).toBe(3);
    expect(report).toMatchObject({ status: 'PASSED', checks: [{ name: 'docker', ok: true }] });
  });

  it('runs only the checks asked for', async () => {
    const { report } = await runSelfCheck(infra.activities, ['database']);
    expect(report.checks.map((c) => c.name)).toEqual(['database']);
  });
});
