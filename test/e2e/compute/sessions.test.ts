import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type Docker from 'dockerode';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { computeSessionLabel } from '../../../activities/compute/node';
import { containerRuntimeResolver } from '../../../activities/shared/containerRuntime';
import { instanceLabel } from '../../../activities/shared/docker';
import { createUserKey } from '../../../api/platform/auth';
import { createLogger } from '../../../platform/logger';
import { startComputeNode, type ComputeNode } from '../../../workers/computeNode';
import { ensureComputeReconcileSchedule } from '../../../workers/computeSchedule';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { execAsWork, nodeBDocker, removeComputeLeftovers } from '../../helpers/computeNode';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * Compute sessions through HTTP, end to end: the api, the session workflows on a worker, and two
 * real nodes — node a on the main Docker engine, node b on the second one — each a node worker
 * on its own queue, pulling the kernel image from the loopback registry. The seed's scenarios
 * of create (1), templates (2), clusters (3) and check-and-transit (11), and the common errors.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let nodeB: Docker;
let other: { key: string; userId: string };
const nodes: ComputeNode[] = [];
const running: Promise<void>[] = [];
const tag = randomUUID().slice(0, 8);
const group = `e2e-s-${tag}`;
/** A group whose only node has no worker: whatever lands there is never taken. */
const deadGroup = `e2e-d-${tag}`;
const sessions: string[] = [];

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(api.userKey);
const admin = () => as(api.adminKey);

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra, { COMPUTE_AGENT_TIMEOUT_SECONDS: 4, COMPUTE_CREATE_WAIT_SECONDS: 60 });
  nodeB = nodeBDocker();
  other = await createUserKey(infra.pool, `other-${tag}`, 'user', 'test');
  for (const name of [group, deadGroup]) await request(api.app).post('/api/v1/admin/scaling-groups').set(admin()).send({ name }).expect(201);
  // Room for the seed's 4-kernel cluster and its one-gpu session, beyond the default policy.
  await request(api.app).put(`/api/v1/admin/resource-policies/${api.userId}`).set(admin()).send({ max_sessions: 30, resources: { cpu: '64', memory: '64G', gpu: '4' } }).expect(200);
  const config = { ...infra.config, TEMPORAL_NAMESPACE: env.namespace ?? infra.config.TEMPORAL_NAMESPACE };
  const log = createLogger('silent', 'compute-e2e');
  const capacity = { cpuMillis: 16_000, memoryBytes: 16 * 2 ** 30, gpu: 1 };
  nodes.push(await startComputeNode({ config, connection: env.nativeConnection, docker: infra.docker, pool: infra.pool, containerRuntime: infra.containerRuntime, log, name: `${group}-a`, scalingGroup: group, capacity }));
  nodes.push(await startComputeNode({
    config, connection: env.nativeConnection, docker: nodeB, pool: infra.pool, containerRuntime: containerRuntimeResolver(nodeB, infra.config.CONTAINER_RUNTIME), log, name: `${group}-b`, scalingGroup: group, capacity,
  }));
  running.push(...nodes.map((node) => node.run()));
  // Registered and heartbeating, but no worker polls its queue.
  await infra.pool.query('INSERT INTO compute_nodes (name, scaling_group, task_queue, cpu_millis, memory_bytes) VALUES ($1, $2, $3, 8000, $4)', [`${deadGroup}-x`, deadGroup, `node/${deadGroup}-x-${tag}`, 8 * 2 ** 30]);
}, 180_000);

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.shutdown()));
  await Promise.all(running);
  for (const docker of [infra.docker, nodeB]) await removeComputeLeftovers(docker, infra.config.SESSIONFLOW_INSTANCE, sessions, []);
  await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = ANY($1::uuid[])', [[api.userId, other.userId]]);
  await infra.pool.query('DELETE FROM compute_nodes WHERE scaling_group = ANY($1::text[])', [[group, deadGroup]]);
  await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = ANY($1::text[])', [[group, deadGroup]]);
  await api.stop();
  await infra.close();
  await env.teardown();
});

interface Session {
  id: string;
  name: string;
  status: string;
  status_reason: string | null;
  kernels: { hostname: string; node: string | null }[];
  [key: string]: unknown;
}

async function create(body: Record<string, unknown>, expected = 201): Promise<Session> {
  const res = await request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' }, ...body });
  if (res.status !== expected) throw new Error(`create answered ${res.status}: ${res.text}`);
  if (res.body.id) sessions.push(res.body.id as string);
  return res.body as Session;
}

const info = async (id: string): Promise<Session> => (await request(api.app).get(`/api/v1/sessions/${id}`).set(user()).expect(200)).body as Session;

async function until(id: string, statuses: string[], seconds = 60): Promise<Session> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const session = await info(id);
    if (statuses.includes(session.status) || Date.now() > deadline) return session;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const destroy = (id: string, query = '') => request(api.app).delete(`/api/v1/sessions/${id}${query}`).set(user());
const history = async (id: string) => ((await request(api.app).get(`/api/v1/sessions/${id}/status-history`).set(user()).expect(200)).body as { items: { from: string | null; to: string }[] }).items.map((item) => item.to);

/** The session's containers on an engine, by its label. */
async function containersOf(docker: Docker, sessionId: string) {
  return docker.listContainers({ all: true, filters: { label: [`${instanceLabel}=${infra.config.SESSIONFLOW_INSTANCE}`, `${computeSessionLabel}=${sessionId}`] } });
}
async function containerOf(sessionId: string, hostname = 'main1'): Promise<{ docker: Docker; id: string }> {
  for (const docker of [infra.docker, nodeB]) {
    const found = (await containersOf(docker, sessionId)).find((c) => c.Labels['org.sessionflow.compute-hostname'] === hostname);
    if (found) return { docker, id: found.Id };
  }
  throw new Error(`no container for ${hostname} of ${sessionId}`);
}

describe('create from params (seed 1)', () => {
  it('1.1 creates a session PENDING → SCHEDULED → … → RUNNING on a node of the scaling group, with its vfolders, and destroys it TERMINATED', async () => {
    const session = await create({ session_name: `my-tf-session-${tag}`, resources: { cpu: '1', memory: '512M', gpu: '1' }, vfolders: ['home', 'data'] });
    expect(session).toMatchObject({ name: `my-tf-session-${tag}`, status: 'RUNNING', resources: { cpu: '1', memory: '512M', gpu: '1' }, vfolders: ['home', 'data'] });
    expect(await history(session.id)).toEqual(['PENDING', 'SCHEDULED', 'PREPARING', 'PULLING', 'PREPARED', 'CREATING', 'RUNNING']);
    const { docker, id } = await containerOf(session.id);
    expect(await execAsWork(docker, id, ['sh', '-c', 'echo kept > /home/work/data/notes && cat /home/work/data/notes && test -d /home/work/home'])).toEqual({ exitCode: 0, output: 'kept\n' });

    const ended = await destroy(session.id).expect(200);
    expect(['TERMINATING', 'TERMINATED']).toContain(ended.body.status);
    expect((await until(session.id, ['TERMINATED'])).status).toBe('TERMINATED');
    expect(await containersOf(docker, session.id)).toEqual([]);
    // Idempotent: an ended session's destroy answers with it as it is.
    expect((await destroy(session.id).expect(200)).body.status).toBe('TERMINATED');
  });

  it('1.2 refuses a request beyond the resource policy with QuotaExceeded naming the limit, asked and free — and creates nothing', async () => {
    const before = (await request(api.app).get('/api/v1/sessions').set(user()).expect(200)).body.total as number;
    const res = await request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '1000', memory: '10TB' } }).expect(403);
    expect(res.body).toMatchObject({ code: 'QuotaExceeded', limit: expect.any(String), requested: expect.anything(), available: expect.anything() });
    expect((await request(api.app).get('/api/v1/sessions').set(user()).expect(200)).body.total).toBe(before);
  });

  it('1.3 refuses an unknown image with ImageNotFound', async () => {
    const res = await request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'non-existent:latest', scaling_group: group }).expect(404);
    expect(res.body).toMatchObject({ code: 'ImageNotFound' });
  });

  it('1.4 sets env and secret_env in the kernel; the secret value is in no answer, label or workflow history', async () => {
    const session = await create({ env: { CUDA_VISIBLE_DEVICES: '0', PYTHONPATH: '/app' }, secret_env: { API_KEY: 'secret-value' } });
    expect(session.status).toBe('RUNNING');
    expect(JSON.stringify(session)).not.toContain('secret-value');
    expect(session).toMatchObject({ env: { CUDA_VISIBLE_DEVICES: '0', PYTHONPATH: '/app' }, secret_env: ['API_KEY'] });
    const { docker, id } = await containerOf(session.id);
    expect((await execAsWork(docker, id, ['sh', '-c', 'echo $CUDA_VISIBLE_DEVICES $PYTHONPATH $API_KEY'])).output).toBe('0 /app secret-value\n');
    expect(JSON.stringify((await docker.getContainer(id).inspect()).Config.Labels)).not.toContain('secret-value');
    const workflowHistory = await env.client.workflow.getHandle(`session/${session.id}`).fetchHistory();
    expect(JSON.stringify(workflowHistory)).not.toContain('secret-value');
    expect(JSON.stringify(workflowHistory)).not.toContain(Buffer.from('secret-value').toString('base64'));
    await destroy(session.id).expect(200);
  });

  it('1.5 runs the bootstrap script once at start, its output in the kernel log; a failing one ends the session ERROR with its exit code', async () => {
    const session = await create({ bootstrap_script: 'echo booting\necho ran >> /home/work/boot-runs' });
    expect(session.status).toBe('RUNNING');
    const { docker, id } = await containerOf(session.id);
    expect((await docker.getContainer(id).logs({ stdout: true, stderr: true })).toString()).toContain('booting');
    await request(api.app).post(`/api/v1/sessions/${session.id}/restart`).set(user()).expect(200);
    expect((await execAsWork(docker, id, ['cat', '/home/work/boot-runs'])).output).toBe('ran\n');
    await destroy(session.id).expect(200);

    const failing = await create({ bootstrap_script: 'echo about to fail\nexit 3' });
    const ended = await until(failing.id, ['ERROR']);
    expect(ended).toMatchObject({ status: 'ERROR', status_reason: expect.stringMatching(/BootstrapFailed: .*main1.*exited with 3/) });
    expect(await containersOf(infra.docker, failing.id)).toEqual([]);
    expect(await containersOf(nodeB, failing.id)).toEqual([]);
  });
});

describe('create from a template (seed 2)', () => {
  it('2.1/2.2 applies the template, with overrides deep-merged; 2.3 an unknown template is TemplateNotFound', async () => {
    const templateId = `ml-workspace-${tag}`;
    await request(api.app).put(`/api/v1/admin/templates/${templateId}`).set(admin())
      .send({ params: { image: 'python:3.11', scaling_group: group, resources: { cpu: '0.5', memory: '256M' }, env: { FROM: 'template' } } }).expect((res) => expect([200, 201]).toContain(res.status));
    const res = await request(api.app).post('/api/v1/sessions/from-template').set(user())
      .send({ template_id: templateId, overrides: { session_name: `custom-name-${tag}`, resources: { cpu: '1' } } }).expect(201);
    sessions.push(res.body.id as string);
    expect(res.body).toMatchObject({ name: `custom-name-${tag}`, status: 'RUNNING', resources: { cpu: '1', memory: '256M' }, env: { FROM: 'template' } });
    await destroy(res.body.id as string).expect(200);

    const missing = await request(api.app).post('/api/v1/sessions/from-template').set(user()).send({ template_id: 'non-existent-template' }).expect(404);
    expect(missing.body).toMatchObject({ code: 'TemplateNotFound' });
  });
});

describe('clusters (seed 3)', () => {
  it('3.1 makes an MPI-style cluster of 4 on one node: main1 + sub1..3 on a private network, reachable by ssh with the shared key', async () => {
    const session = await create({ cluster_mode: 'mpi', cluster_size: 4 });
    expect(session.status).toBe('RUNNING');
    expect(session.kernels.map((k) => k.hostname).sort()).toEqual(['main1', 'sub1', 'sub2', 'sub3']);
    expect(new Set(session.kernels.map((k) => k.node)).size).toBe(1);
    const { docker, id } = await containerOf(session.id);
    const ssh = await execAsWork(docker, id, ['sh', '-c', 'for h in sub1 sub2 sub3; do ssh -o BatchMode=yes $h hostname; done; echo $SF_CLUSTER_HOSTS']);
    expect(ssh).toEqual({ exitCode: 0, output: 'sub1\nsub2\nsub3\nmain1,sub1,sub2,sub3\n' });
    await destroy(session.id).expect(200);
    await until(session.id, ['TERMINATED']);
    expect(await containersOf(docker, session.id)).toEqual([]);
  });

  it('is all or nothing: one kernel\'s failure ends the cluster ERROR naming that kernel, and no kernel is left', async () => {
    const session = await create({ cluster_size: 3, bootstrap_script: '[ "$SF_CLUSTER_HOST" = sub1 ] && exit 4\ntrue' });
    const ended = await until(session.id, ['ERROR']);
    expect(ended).toMatchObject({ status: 'ERROR', status_reason: expect.stringMatching(/^BootstrapFailed: kernel sub1 on node .*exited with 4/) });
    expect(await containersOf(infra.docker, session.id)).toEqual([]);
    expect(await containersOf(nodeB, session.id)).toEqual([]);
  });

  it('3.2 a single-node cluster of size 1 is a plain session', async () => {
    const session = await create({ cluster_mode: 'single-node', cluster_size: 1 });
    expect(session).toMatchObject({ status: 'RUNNING', cluster: { mode: 'single-node', size: 1 }, kernels: [expect.objectContaining({ hostname: 'main1' })] });
    await destroy(session.id).expect(200);
  });

  it('spreads a multi-node cluster over both nodes (both engines)', async () => {
    const session = await create({ cluster_mode: 'multi-node', cluster_size: 2 });
    expect(session.status).toBe('RUNNING');
    expect(new Set(session.kernels.map((k) => k.node))).toEqual(new Set([`${group}-a`, `${group}-b`]));
    expect((await containersOf(infra.docker, session.id)).length).toBe(1);
    expect((await containersOf(nodeB, session.id)).length).toBe(1);
    await destroy(session.id).expect(200);
  });

  it('3.3 refuses a cluster no set of nodes could hold with InsufficientResources, creating nothing', async () => {
    const res = await request(api.app).post('/api/v1/sessions').set(user())
      .send({ image: 'python:3.11', scaling_group: group, cluster_mode: 'multi-node', cluster_size: 10, resources: { cpu: '0.5', memory: '128M' } }).expect(503);
    expect(res.body).toMatchObject({ code: 'InsufficientResources' });
  });
});

describe('check and transit (seed 11)', () => {
  it('11.2 checks a batch: a session whose container vanished goes ERROR, a sound one stays RUNNING, an unknown id has no status', async () => {
    const [gone, sound] = [await create({}), await create({})];
    const { docker, id } = await containerOf(gone.id);
    await docker.getContainer(id).remove({ force: true });
    const unknown = randomUUID();
    const res = await request(api.app).post('/api/v1/admin/sessions/check-and-transit').set(admin()).send({ session_ids: [gone.id, sound.id, unknown] }).expect(200);
    expect(res.body.sessions).toEqual([
      { id: gone.id, status: 'ERROR', reason: expect.stringContaining("kernel main1's container is missing") },
      { id: sound.id, status: 'RUNNING', reason: null },
      { id: unknown, status: null, reason: null },
    ]);
    await destroy(sound.id).expect(200);
  });

  it('runs on a schedule: a run of the scheduled check-and-transit takes a session whose container vanished to ERROR', async () => {
    const scheduleId = await ensureComputeReconcileSchedule(env.client, { SESSIONFLOW_INSTANCE: `e2e-${tag}`, TEMPORAL_TASK_QUEUE: api.taskQueue, COMPUTE_RECONCILE_INTERVAL_SECONDS: 3600 });
    try {
      const described = await env.client.schedule.getHandle(scheduleId).describe();
      expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'computeReconcileWorkflow', taskQueue: api.taskQueue });
      const session = await create({});
      const { docker, id } = await containerOf(session.id);
      await docker.getContainer(id).remove({ force: true });
      await env.client.schedule.getHandle(scheduleId).trigger();
      const ended = await until(session.id, ['ERROR'], 30);
      expect(ended).toMatchObject({ status: 'ERROR', status_reason: "kernel main1's container is missing (check: scheduled check of its containers)" });
    } finally {
      await env.client.schedule.getHandle(scheduleId).delete();
    }
  });

  it('11.1 cancels a session still PENDING when its max_wait runs out', async () => {
    // Each node has one gpu: with both taken, a third gpu session could fit, but not now.
    const blockers = [await create({ resources: { cpu: '0.5', memory: '256M', gpu: '1' } }), await create({ resources: { cpu: '0.5', memory: '256M', gpu: '1' } })];
    const waiting = await create({ resources: { cpu: '0.5', memory: '256M', gpu: '1' }, max_wait: 2, enqueue_only: true });
    expect(waiting.status).toBe('PENDING');
    const ended = await until(waiting.id, ['CANCELLED']);
    expect(ended).toMatchObject({ status: 'CANCELLED', status_reason: 'still PENDING when max_wait ran out' });
    expect(await history(waiting.id)).toEqual(['PENDING', 'CANCELLED']);
    for (const blocker of blockers) await destroy(blocker.id).expect(200);
  });

  it('names AgentNotAvailable when the node it was placed on takes no task', async () => {
    // Its heartbeat says alive; its worker never polls.
    await infra.pool.query('UPDATE compute_nodes SET last_heartbeat_at = now() WHERE scaling_group = $1', [deadGroup]);
    const session = await create({ scaling_group: deadGroup, enqueue_only: true });
    const ended = await until(session.id, ['ERROR']);
    expect(ended).toMatchObject({ status: 'ERROR', status_reason: expect.stringMatching(/^AgentNotAvailable: kernel main1: node e2e-d-\w+-x took no task within 4 s/) });
  });
});

describe('actions on a session', () => {
  it('restarts a RUNNING session (RESTARTING → RUNNING) keeping its files; renames and modifies it; refuses a taken name and actions on an ended session', async () => {
    const first = await create({ session_name: `alpha-${tag}` });
    const second = await create({ session_name: `beta-${tag}` });
    const { docker, id } = await containerOf(first.id);
    await execAsWork(docker, id, ['sh', '-c', 'echo kept > /home/work/file']);
    const restarted = await request(api.app).post(`/api/v1/sessions/${first.id}/restart`).set(user()).expect(200);
    expect(restarted.body.status).toBe('RUNNING');
    expect((await history(first.id)).slice(-2)).toEqual(['RESTARTING', 'RUNNING']);
    expect((await execAsWork(docker, id, ['cat', '/home/work/file'])).output).toBe('kept\n');

    const taken = await request(api.app).post(`/api/v1/sessions/${first.id}/rename`).set(user()).send({ name: `beta-${tag}` }).expect(409);
    expect(taken.body).toMatchObject({ code: 'SessionNameTaken' });
    expect((await request(api.app).post(`/api/v1/sessions/${first.id}/rename`).set(user()).send({ name: `gamma-${tag}` }).expect(200)).body.name).toBe(`gamma-${tag}`);
    expect((await request(api.app).patch(`/api/v1/sessions/${first.id}`).set(user()).send({ priority: 7, idle_timeout: 3600 }).expect(200)).body).toMatchObject({ priority: 7, idle_timeout: 3600 });

    await destroy(second.id).expect(200);
    await until(second.id, ['TERMINATED']);
    const refused = await request(api.app).post(`/api/v1/sessions/${second.id}/restart`).set(user()).expect(409);
    expect(refused.body).toMatchObject({ code: 'InvalidSessionState', current_status: 'TERMINATED' });
    await destroy(first.id).expect(200);
  });

  it('refuses a plain destroy while kernels are being made (InvalidSessionState), and destroys with forced', async () => {
    const session = await create({ bootstrap_script: 'sleep 600', enqueue_only: true });
    await until(session.id, ['CREATING']);
    const refused = await destroy(session.id).expect(409);
    expect(refused.body).toMatchObject({ code: 'InvalidSessionState', current_status: 'CREATING' });
    await destroy(session.id, '?forced=true').expect(200);
    expect((await until(session.id, ['TERMINATED'])).status).toBe('TERMINATED');
    expect(await containersOf(infra.docker, session.id)).toEqual([]);
    expect(await containersOf(nodeB, session.id)).toEqual([]);
  });

  it('starts a session only after its dependency ended; a recursive destroy takes the dependents with it', async () => {
    const dependency = await create({});
    const dependent = await create({ dependencies: [dependency.id], enqueue_only: true });
    const third = await create({ dependencies: [dependent.id], enqueue_only: true });
    expect((await info(dependent.id)).status).toBe('PENDING');
    await destroy(dependency.id).expect(200);
    expect((await until(dependent.id, ['RUNNING'])).status).toBe('RUNNING');

    await destroy(dependent.id, '?recursive=true').expect(200);
    expect((await until(dependent.id, ['TERMINATED'])).status).toBe('TERMINATED');
    expect((await until(third.id, ['CANCELLED'])).status).toBe('CANCELLED');
  });

  it('hides another user\'s session: 404 for info, actions and destroy', async () => {
    const session = await create({ enqueue_only: true });
    for (const call of [
      request(api.app).get(`/api/v1/sessions/${session.id}`),
      request(api.app).post(`/api/v1/sessions/${session.id}/restart`),
      request(api.app).delete(`/api/v1/sessions/${session.id}`),
    ]) {
      expect((await call.set(as(other.key))).status).toBe(404);
    }
    await destroy(session.id, '?forced=true').expect(200);
  });

  it('answers bad input with 400 and the offending fields', async () => {
    const res = await request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', resources: { cpu: 'lots' }, cluster_size: 0 }).expect(400);
    expect(res.body).toMatchObject({ code: 'ValidationFailed' });
    expect((res.body.errors as { field: string }[]).map((e) => e.field)).toEqual(expect.arrayContaining(['body.resources.cpu', 'body.cluster_size']));
    // What PostgreSQL or the router cannot take is the request's fault too, never a 500.
    for (const bad of [
      request(api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', env: { A: 'x\u0000y' } }),
      request(api.app).get('/api/v1/sessions?q=%00').set(user()),
      request(api.app).get('/api/v1/sessions/%ZZ').set(user()),
      request(api.app).patch('/api/v1/admin/nodes/%00').set(admin()).send({ schedulable: false }),
    ]) {
      const answer = await bad;
      expect([answer.status, answer.body.code]).toEqual([400, 'ValidationFailed']);
    }
  });
});
