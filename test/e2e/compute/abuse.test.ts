import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { computeReconcileKind, makeComputeSessionWorkflowId } from '../../../domain/compute/kind';
import { sessionStartOptions } from '../../../domain/shared/kind';
import type { computeReconcileWorkflow, ComputeReconcileResult } from '../../../workflows/compute/computeReconcile';
import type { ApiHarness } from '../../helpers/api';
import { startComputeE2e, type ComputeE2e } from '../../helpers/computeE2e';

/**
 * Abuse of a kernel's share, end to end: the abuse report through HTTP (measured on a real node
 * by docker stats, judged against the owner's policy), and the reconciler's action on a kernel
 * abusing at two consecutive looks, run here directly rather than on its schedule.
 */
let e2e: ComputeE2e;
let api: ApiHarness;
const tag = randomUUID().slice(0, 8);
const group = `e2e-ab-${tag}`;
const sessions: string[] = [];

/** The busy loop: a thread that never sleeps, beside the runner's main thread. */
const spin = 'import threading\ndef spin():\n  while True: pass\nthreading.Thread(target=spin, daemon=True).start()';
/** Room for the test's sessions and thresholds a spinning quarter core reaches even on a busy machine. */
const policyBody = (extra: Record<string, unknown>) => ({ max_sessions: 8, resources: { cpu: '8', memory: '16G', gpu: '0' }, ...extra });

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(api.userKey);
const admin = () => as(api.adminKey);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Report {
  session_id: string;
  status: string;
  policy: Record<string, unknown>;
  kernels: { hostname: string; node: string; status: string; cpu: { percent: number; abusing_percent: number; warning_percent: number; allocated_cores: number }; memory: { used_bytes: number; allocated_bytes: number; percent: number }; pids: { current: number }; sample_seconds: number; reasons: string[]; last_look: { status: string; abusing_looks: number } | null }[];
}

beforeAll(async () => {
  e2e = await startComputeE2e({ group, sessions });
  ({ api } = e2e);
}, 180_000);

afterAll(async () => {
  await request(api.app).delete(`/api/v1/admin/resource-policies/${api.userId}`).set(admin());
  await e2e.teardown();
});

/** A RUNNING session of a quarter core, its runner up (one cell run). */
async function idleSession(): Promise<string> {
  const created = await request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.25', memory: '256M' } });
  if (created.body.id) sessions.push(created.body.id as string);
  expect(created.status).toBe(201);
  expect(created.body.status).toBe('RUNNING');
  const id = created.body.id as string;
  await execute(id, 'ready = True');
  return id;
}

async function spinningSession(): Promise<string> {
  const id = await idleSession();
  await execute(id, spin);
  return id;
}

async function execute(id: string, code: string): Promise<void> {
  const res = await request(api.app).post(`/api/v1/sessions/${id}/execute`).set(user()).send({ code });
  expect(res.status).toBe(200);
  expect(res.body.exit_code).toBe(0);
}

const report = (id: string, key = api.userKey) => request(api.app).get(`/api/v1/sessions/${id}/abuse-report`).set(as(key));

/** The report, asked again (for up to 30 s) until it has the status wanted: a kernel starting or a thread being scheduled take a moment to show. */
async function reportOnceIt(id: string, status: string): Promise<Report> {
  let last: Report | undefined;
  for (let i = 0; i < 30 && last?.status !== status; i++) {
    if (i > 0) await sleep(1000);
    last = (await report(id).expect(200)).body as Report;
  }
  return last!;
}

/** One run of the reconciler, as its schedule starts it. */
async function reconcile(): Promise<ComputeReconcileResult> {
  const options = sessionStartOptions(computeReconcileKind, { key: [`e2e-${tag}-${randomUUID()}`], taskQueue: api.taskQueue, status: 'RUNNING', summary: 'Compute check and transit (abuse e2e)' });
  return e2e.env.client.workflow.execute<typeof computeReconcileWorkflow>(computeReconcileKind.workflowType, { ...options, args: [] });
}

const info = async (id: string) => (await request(api.app).get(`/api/v1/sessions/${id}`).set(user()).expect(200)).body as { status: string; status_reason: string | null; abuse_warning: Record<string, unknown> | null };
const history = async (id: string) => (await request(api.app).get(`/api/v1/sessions/${id}/status-history`).set(user()).expect(200)).body.items as { to: string; reason: string | null; details?: Record<string, unknown> }[];

async function untilEnded(id: string): Promise<Awaited<ReturnType<typeof info>>> {
  for (let i = 0; i < 150; i++) {
    const session = await info(id);
    if (['TERMINATED', 'ERROR', 'CANCELLED'].includes(session.status)) return session;
    await sleep(200);
  }
  return info(id);
}

const destroy = (id: string) => request(api.app).delete(`/api/v1/sessions/${id}`).set(user()).expect(200);

describe('GET /api/v1/sessions/:id/abuse-report', () => {
  it('says ok for an idle kernel, with its figures against its allocation and the policy\'s thresholds', async () => {
    const id = await idleSession();
    const body = await reportOnceIt(id, 'ok');
    expect(body).toMatchObject({
      session_id: id, status: 'ok',
      policy: { abuse_cpu_warning_percent: 80, abuse_cpu_percent: 95, abuse_memory_percent: 95, abuse_action: 'warn' },
    });
    expect(body.kernels).toHaveLength(1);
    const [kernel] = body.kernels;
    expect(kernel).toMatchObject({
      hostname: 'main1', node: `${group}-a`, status: 'ok', reasons: [], last_look: null,
      cpu: { allocated_cores: 0.25, warning_percent: 80, abusing_percent: 95 }, memory: { allocated_bytes: 256 * 2 ** 20 },
    });
    expect(kernel!.cpu.percent).toBeLessThan(80);
    expect(kernel!.memory.used_bytes).toBeGreaterThan(0);
    expect(kernel!.memory.percent).toBeLessThan(95);
    expect(kernel!.pids.current).toBeGreaterThan(0);
    expect(kernel!.sample_seconds).toBeGreaterThan(0);
    await destroy(id);
  });

  it('says abusing while a thread spins, with the kernel\'s CPU at or above the threshold', async () => {
    const id = await spinningSession();
    const body = await reportOnceIt(id, 'abusing');
    expect(body.status).toBe('abusing');
    const [kernel] = body.kernels;
    expect(kernel!.status).toBe('abusing');
    expect(kernel!.cpu.percent).toBeGreaterThanOrEqual(kernel!.cpu.abusing_percent);
    expect(kernel!.cpu.abusing_percent).toBe(95);
    expect(kernel!.reasons).toEqual([expect.stringMatching(/^cpu [\d.]+% of 0\.25 cores ≥ 95%$/)]);
    await destroy(id);
  });

  it('answers another user\'s session as unknown (404), and shows it to an admin', async () => {
    const id = await idleSession();
    expect((await report(id, e2e.other.key).expect(404)).body.code).toBe('SessionNotFound');
    expect((await report(randomUUID()).expect(404)).body.code).toBe('SessionNotFound');
    expect((await request(api.app).get('/api/v1/sessions/not-an-id/abuse-report').set(user()).expect(400)).body.code).toBe('ValidationFailed');
    const seen = (await report(id, api.adminKey).expect(200)).body as Report;
    expect(seen.session_id).toBe(id);
    await destroy(id);
  });

  it('refuses a session that is not RUNNING with InvalidSessionState (409) and its status', async () => {
    const created = await request(api.app).post('/api/v1/sessions').set(user())
      .send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.25', memory: '256M' }, starts_at: new Date(Date.now() + 3_600_000).toISOString(), enqueue_only: true }).expect(201);
    const id = created.body.id as string;
    sessions.push(id);
    const pending = await report(id).expect(409);
    expect(pending.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(pending.body).toMatchObject({ code: 'InvalidSessionState', current_status: 'PENDING' });
    await destroy(id);
    expect((await untilEnded(id)).status).toBe('CANCELLED');
    expect((await report(id).expect(409)).body).toMatchObject({ code: 'InvalidSessionState', current_status: 'CANCELLED' });
  });
});

describe('the reconciler\'s action on a kernel abusing at two consecutive looks', () => {
  it('terminate: ends the session with reason abuse, its figures in the status history — and not at the first look', async () => {
    await request(api.app).put(`/api/v1/admin/resource-policies/${api.userId}`).set(admin())
      .send(policyBody({ abuse_cpu_warning_percent: 25, abuse_cpu_percent: 50, abuse_action: 'terminate' })).expect(200);
    const id = await spinningSession();
    expect((await reportOnceIt(id, 'abusing')).status).toBe('abusing');

    const first = await reconcile();
    expect(first.abuse).toMatchObject({ terminated: 0 });
    expect(first.abuse!.abusing).toBeGreaterThanOrEqual(1);
    expect((await info(id)).status).toBe('RUNNING');
    expect((await report(id).expect(200)).body.kernels[0].last_look).toMatchObject({ status: 'abusing', abusing_looks: 1 });

    const second = await reconcile();
    expect(second.abuse).toMatchObject({ terminated: 1 });
    const ended = await untilEnded(id);
    expect(ended).toMatchObject({ status: 'TERMINATED', status_reason: 'abuse' });
    const rows = await history(id);
    expect(rows.slice(-2).map((row) => [row.to, row.reason])).toEqual([['TERMINATING', 'abuse'], ['TERMINATED', 'abuse']]);
    const terminating = rows.at(-2)!;
    expect(terminating.details).toMatchObject({ abuse: { action: 'terminate', looks: 2, kernels: [{ hostname: 'main1', status: 'abusing', cpu: { abusing_percent: 50, allocated_cores: 0.25 } }] } });
    const figures = (terminating.details!.abuse as { kernels: { cpu: { percent: number } }[] }).kernels[0]!.cpu;
    expect(figures.percent).toBeGreaterThanOrEqual(50);
    expect((await report(id).expect(409)).body).toMatchObject({ code: 'InvalidSessionState', current_status: 'TERMINATED' });
    // The Web UI shows the workflow's current details (its metadata query).
    const metadata = await e2e.env.client.workflow.getHandle(makeComputeSessionWorkflowId(id)).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toMatch(/^terminated for abuse after 2 consecutive looks — kernel main1: cpu [\d.]+% of 0\.25 cores ≥ 50%$/);
  });

  it('warn: records the warning on the session, visible in its info, and leaves it RUNNING', async () => {
    await request(api.app).put(`/api/v1/admin/resource-policies/${api.userId}`).set(admin())
      .send(policyBody({ abuse_cpu_warning_percent: 25, abuse_cpu_percent: 50, abuse_action: 'warn' })).expect(200);
    const id = await spinningSession();
    expect((await reportOnceIt(id, 'abusing')).status).toBe('abusing');

    expect((await reconcile()).abuse).toMatchObject({ warned: 0, terminated: 0 });
    expect((await info(id)).abuse_warning).toBeNull();
    expect((await reconcile()).abuse).toMatchObject({ warned: 1, terminated: 0 });
    const warned = await info(id);
    expect(warned.status).toBe('RUNNING');
    expect(warned.abuse_warning).toMatchObject({
      action: 'warn', looks: 2, at: expect.any(String), message: expect.stringContaining('abuse warning after 2 consecutive looks — kernel main1: cpu'),
      kernels: [{ hostname: 'main1', status: 'abusing', cpu: { abusing_percent: 50 } }],
    });
    // Nothing else: no status change, and the kernel still runs code.
    expect((await history(id)).map((row) => row.to)).not.toContain('TERMINATING');
    await execute(id, 'still = True');
    await destroy(id);
  });
});

describe('the abuse settings of a resource policy', () => {
  const path = () => `/api/v1/admin/resource-policies/${api.userId}`;

  it('are set with the policy, shown with it, and back to the defaults when left out', async () => {
    const set = await request(api.app).put(path()).set(admin()).send(policyBody({ abuse_cpu_warning_percent: 70, abuse_cpu_percent: 90, abuse_memory_percent: 97.5, abuse_action: 'terminate' })).expect(200);
    expect(set.body).toMatchObject({ default: false, abuse_cpu_warning_percent: 70, abuse_cpu_percent: 90, abuse_memory_percent: 97.5, abuse_action: 'terminate' });
    expect((await request(api.app).get(path()).set(admin()).expect(200)).body).toMatchObject({ abuse_cpu_percent: 90, abuse_action: 'terminate' });
    const partial = await request(api.app).put(path()).set(admin()).send(policyBody({ abuse_cpu_warning_percent: 90 })).expect(200);
    expect(partial.body).toMatchObject({ abuse_cpu_warning_percent: 90, abuse_cpu_percent: 95, abuse_memory_percent: 95, abuse_action: 'warn' });
  });

  it('refuses bad thresholds and actions with 400 naming the field, and changes nothing', async () => {
    await request(api.app).put(path()).set(admin()).send(policyBody({ abuse_action: 'terminate' })).expect(200);
    const fields = (body: { errors: { field: string }[] }) => body.errors.map((e) => e.field);
    expect(fields((await request(api.app).put(path()).set(admin()).send(policyBody({ abuse_action: 'kill' })).expect(400)).body)).toEqual(['body.abuse_action']);
    expect(fields((await request(api.app).put(path()).set(admin()).send(policyBody({ abuse_cpu_percent: 0, abuse_memory_percent: 101 })).expect(400)).body)).toEqual(['body.abuse_cpu_percent', 'body.abuse_memory_percent']);
    // A kernel warns before it abuses: above the given or default abusing threshold is refused.
    const above = await request(api.app).put(path()).set(admin()).send(policyBody({ abuse_cpu_warning_percent: 90, abuse_cpu_percent: 85 })).expect(400);
    expect(above.body).toMatchObject({ code: 'ValidationFailed', errors: [{ field: 'body.abuse_cpu_warning_percent' }] });
    expect(fields((await request(api.app).put(path()).set(admin()).send(policyBody({ abuse_cpu_warning_percent: 96 })).expect(400)).body)).toEqual(['body.abuse_cpu_warning_percent']);
    expect((await request(api.app).get(path()).set(admin()).expect(200)).body).toMatchObject({ abuse_action: 'terminate', abuse_cpu_warning_percent: 80 });
    await request(api.app).delete(path()).set(admin()).expect(204);
    expect((await request(api.app).get(path()).set(admin()).expect(200)).body).toMatchObject({ default: true, abuse_action: 'warn' });
  });
});
