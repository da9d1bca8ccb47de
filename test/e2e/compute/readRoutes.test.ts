import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomBytes, randomUUID } from 'node:crypto';
import request from 'supertest';
import { computeStoreSettingsFrom, createComputeStore, type ComputeStore } from '../../../activities/compute/store';
import { computeSecretsSealer } from '../../../activities/compute/secretStore';
import { createUserKey } from '../../../api/platform/auth';
import { createSessionBody } from '../../../domain/compute/params';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/**
 * The read routes of compute sessions over HTTP, for sessions admitted through the store (the
 * write routes and the workflow are another file's): owner scoping, matching, pagination,
 * session info without secret values, status history, dependency graph, vfolders.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
let store: ComputeStore;
let other: { key: string; userId: string };
const tag = randomUUID().slice(0, 8);
const group = `e2e-${tag}`;
const node = `e2e-${tag}-n1`;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra);
  store = createComputeStore(infra.pool, { ...computeStoreSettingsFrom(infra.config), sealer: computeSecretsSealer(randomBytes(32).toString('base64')) });
  other = await createUserKey(infra.pool, `other-${tag}`, 'user', 'test');
  await store.createScalingGroup(group, '');
  await infra.pool.query(`INSERT INTO compute_nodes (name, scaling_group, task_queue, cpu_millis, memory_bytes) VALUES ($1, $2, $3, 16000, $4)`, [node, group, `node/${node}`, 64 * 2 ** 30]);
}, 60_000);
afterAll(async () => {
  await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = ANY($1::uuid[])', [[api.userId, other.userId]]);
  await infra.pool.query('DELETE FROM compute_nodes WHERE name = $1', [node]);
  await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = $1', [group]);
  await api?.stop();
  await infra.close();
  await env.teardown();
});

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(api.userKey);
const admit = (ownerId: string, body: Record<string, unknown>) => store.admitSession({ ownerId, params: createSessionBody.parse({ image: 'python:3.11', scaling_group: group, ...body }) });

describe('session reads', () => {
  it('show session info with canonical resources, kernels and secret names but never secret values', async () => {
    const input = await admit(api.userId, {
      session_name: `info-${tag}`, resources: { cpu: '500m', memory: '1.5g' }, cluster_size: 2, env: { PYTHONPATH: '/app' }, secret_env: { API_KEY: 'secret-value' },
      vfolders: ['home'], bootstrap_script: 'echo hi', max_wait: 600, idle_timeout: 60,
    });
    await store.scheduleSession(input.sessionId);
    const res = await request(api.app).get(`/api/v1/sessions/${input.sessionId}`).set(user()).expect(200);
    expect(res.text).not.toContain('secret-value');
    expect(res.body).toMatchObject({
      id: input.sessionId, name: `info-${tag}`, owner_id: api.userId, status: 'PENDING', status_reason: null, image: 'python:3.11', scaling_group: group,
      cluster: { mode: 'single-node', size: 2 }, resources: { cpu: '0.5', memory: '1536M', gpu: '0' }, total_resources: { cpu: '1', memory: '3G', gpu: '0' },
      workflow_id: `session/${input.sessionId}`, env: { PYTHONPATH: '/app' }, secret_env: ['API_KEY'], vfolders: ['home'], bootstrap_script: 'echo hi', dependencies: [],
      idle_timeout: 60, max_lifetime: null, started_at: null, terminated_at: null, pending_deadline: expect.any(String),
      kernels: [{ role: 'main', idx: 1, hostname: 'main1', node, status: 'PENDING' }, { role: 'sub', idx: 1, hostname: 'sub1', node, status: 'PENDING' }],
    });
  });

  it('answer another user\'s session with 404 SessionNotFound, and show it to an admin', async () => {
    const input = await admit(other.userId, { session_name: `theirs-${tag}` });
    for (const suffix of ['', '/status-history', '/dependency-graph']) {
      const res = await request(api.app).get(`/api/v1/sessions/${input.sessionId}${suffix}`).set(user()).expect(404);
      expect(res.body.code).toBe('SessionNotFound');
    }
    expect((await request(api.app).get(`/api/v1/sessions/${input.sessionId}`).set(as(api.adminKey)).expect(200)).body.owner_id).toBe(other.userId);
    expect((await request(api.app).get(`/api/v1/sessions?q=theirs-${tag}`).set(user()).expect(200)).body.total).toBe(0);
    expect((await request(api.app).get(`/api/v1/sessions?q=theirs-${tag}`).set(as(api.adminKey)).expect(200)).body.total).toBe(1);
    expect((await request(api.app).get(`/api/v1/sessions/${randomUUID()}`).set(user()).expect(404)).body.code).toBe('SessionNotFound');
    expect((await request(api.app).get('/api/v1/sessions/not-an-id').set(user()).expect(400)).body.errors[0].field).toBe('params.id');
  });

  it('match own sessions by name or id prefix, newest first, a page at a time, with a status filter', async () => {
    const made = [];
    for (let i = 1; i <= 5; i++) made.push(await admit(api.userId, { session_name: `match-${tag}-${i}` }));
    await store.markStartFailed(made[0]!.sessionId, 'no worker');
    const page = (query: string) => request(api.app).get(`/api/v1/sessions?${query}`).set(user()).expect(200).then((res) => res.body);
    const first = await page(`q=match-${tag}&page_size=2`);
    expect(first).toMatchObject({ page: 1, page_size: 2, total: 5 });
    expect(first.items.map((s: { name: string }) => s.name)).toEqual([`match-${tag}-5`, `match-${tag}-4`]);
    expect((await page(`q=match-${tag}&page_size=2&page=3`)).items.map((s: { name: string }) => s.name)).toEqual([`match-${tag}-1`]);
    expect((await page(`q=match-${tag}&status=ERROR`)).items).toEqual([expect.objectContaining({ name: `match-${tag}-1`, status: 'ERROR', status_reason: 'no worker', terminated_at: expect.any(String) })]);
    expect((await page(`q=${made[2]!.sessionId.slice(0, 13)}`)).items.map((s: { id: string }) => s.id)).toEqual([made[2]!.sessionId]);
    const bad = await request(api.app).get('/api/v1/sessions?page_size=0&status=SLEEPING').set(user()).expect(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['query.page_size', 'query.status']);
  });

  it('give the status history oldest first and the dependency graph recursively', async () => {
    const a = await admit(api.userId, { session_name: `dep-a-${tag}` });
    const b = await admit(api.userId, { session_name: `dep-b-${tag}`, dependencies: [a.sessionId] });
    const c = await admit(api.userId, { session_name: `dep-c-${tag}`, dependencies: [b.sessionId] });
    await store.recordTransition({ sessionId: a.sessionId, from: 'PENDING', to: 'SCHEDULED', reason: 'placed' });
    await store.recordTransition({ sessionId: a.sessionId, from: 'SCHEDULED', to: 'CANCELLED', reason: 'destroyed while scheduled' });
    const history = await request(api.app).get(`/api/v1/sessions/${a.sessionId}/status-history`).set(user()).expect(200);
    expect(history.body).toEqual({
      session_id: a.sessionId,
      items: [
        { seq: 1, from: null, to: 'PENDING', reason: 'admitted', at: expect.any(String) },
        { seq: 2, from: 'PENDING', to: 'SCHEDULED', reason: 'placed', at: expect.any(String) },
        { seq: 3, from: 'SCHEDULED', to: 'CANCELLED', reason: 'destroyed while scheduled', at: expect.any(String) },
      ],
    });
    const graph = await request(api.app).get(`/api/v1/sessions/${c.sessionId}/dependency-graph`).set(user()).expect(200);
    expect(graph.body).toEqual({
      root: c.sessionId,
      nodes: [{ id: c.sessionId, name: `dep-c-${tag}`, status: 'PENDING' }, { id: b.sessionId, name: `dep-b-${tag}`, status: 'PENDING' }, { id: a.sessionId, name: `dep-a-${tag}`, status: 'CANCELLED' }],
      edges: expect.arrayContaining([{ session: c.sessionId, depends_on: b.sessionId }, { session: b.sessionId, depends_on: a.sessionId }]),
    });
    expect(graph.body.edges).toHaveLength(2);
  });
});

describe('vfolders', () => {
  it('are created once, listed with their mounts, and deleted only when no live session mounts them', async () => {
    const name = `data-${tag}`;
    expect((await request(api.app).post('/api/v1/vfolders').set(user()).send({ name }).expect(201)).body).toMatchObject({ name, mounted_by: 0 });
    await request(api.app).post('/api/v1/vfolders').set(user()).send({ name }).expect(200);
    const session = await admit(api.userId, { vfolders: [name] });
    expect((await request(api.app).get('/api/v1/vfolders').set(user()).expect(200)).body.items).toContainEqual(expect.objectContaining({ name, mounted_by: 1 }));
    expect((await request(api.app).get('/api/v1/vfolders').set(as(other.key)).expect(200)).body.items).toEqual([]);
    const inUse = await request(api.app).delete(`/api/v1/vfolders/${name}`).set(user()).expect(409);
    expect(inUse.body).toMatchObject({ code: 'VFolderInUse', vfolder: name });
    await store.markStartFailed(session.sessionId, 'test');
    await request(api.app).delete(`/api/v1/vfolders/${name}`).set(user()).expect(204);
    expect((await request(api.app).delete(`/api/v1/vfolders/${name}`).set(user()).expect(404)).body.code).toBe('NotFound');
    expect((await request(api.app).post('/api/v1/vfolders').set(user()).send({ name: '../etc' }).expect(400)).body.errors[0].field).toBe('body.name');
  });
});
