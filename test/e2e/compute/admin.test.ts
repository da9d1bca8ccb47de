import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { connectTestEnv } from '../../helpers/temporal';

/** The compute reference data over HTTP (admin): images, templates, resource policies, scaling groups, nodes. */
let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
const tag = randomUUID().slice(0, 8);
const nodes: string[] = [];

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra);
}, 60_000);
afterAll(async () => {
  await infra.pool.query('DELETE FROM compute_nodes WHERE name = ANY($1::text[])', [nodes]);
  await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name LIKE $1', [`e2e-${tag}%`]);
  await infra.pool.query('DELETE FROM compute_images WHERE name LIKE $1', [`%e2e-${tag}%`]);
  await infra.pool.query('DELETE FROM compute_templates WHERE id LIKE $1', [`e2e-${tag}%`]);
  await api?.stop();
  await infra.close();
  await env.teardown();
});

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const admin = () => as(api.adminKey);
const user = () => as(api.userKey);
const fields = (body: { errors?: { field: string }[] }) => (body.errors ?? []).map((e) => e.field).sort();

describe('admin routes', () => {
  it('refuse a non-admin with 403 Forbidden', async () => {
    for (const [method, path] of [
      ['get', '/api/v1/admin/images'], ['post', '/api/v1/admin/images'], ['get', '/api/v1/admin/templates'], ['put', '/api/v1/admin/templates/x'],
      ['get', `/api/v1/admin/resource-policies/${api.userId}`], ['get', '/api/v1/admin/scaling-groups'], ['get', '/api/v1/admin/nodes'], ['patch', '/api/v1/admin/nodes/x'],
    ] as const) {
      const res = await request(api.app)[method](path).set(user()).send({});
      expect([path, res.status, res.body.code]).toEqual([path, 403, 'Forbidden']);
    }
  });
});

describe('images', () => {
  it('has the built-in python:3.11 on the kernel image in the registry', async () => {
    const res = await request(api.app).get('/api/v1/admin/images/python:3.11').set(admin()).expect(200);
    expect(res.body).toMatchObject({ name: 'python:3.11', reference: infra.config.COMPUTE_KERNEL_IMAGE, resources: { cpu: '1', memory: '256M', gpu: '0' } });
  });

  it('are created, replaced, read by URL-encoded name (with / and :), listed and deleted', async () => {
    const name = `lablup/e2e-${tag}:2.10-gpu`;
    const path = `/api/v1/admin/images/${encodeURIComponent(name)}`;
    const created = await request(api.app).post('/api/v1/admin/images').set(admin()).send({ name, reference: '127.0.0.1:5000/lablup/tf:2.10', resources: { cpu: '4', memory: '16G', gpu: '1' } }).expect(201);
    expect(created.body).toMatchObject({ name, reference: '127.0.0.1:5000/lablup/tf:2.10', resources: { cpu: '4', memory: '16G', gpu: '1' } });
    expect(created.headers.location).toBe(path);
    const replaced = await request(api.app).post('/api/v1/admin/images').set(admin()).send({ name, reference: '127.0.0.1:5000/lablup/tf:2.11' }).expect(200);
    // Without resources a replacement keeps the image's own.
    expect(replaced.body).toMatchObject({ reference: '127.0.0.1:5000/lablup/tf:2.11', resources: { cpu: '4', memory: '16G', gpu: '1' } });
    expect((await request(api.app).get(path).set(admin()).expect(200)).body.reference).toBe('127.0.0.1:5000/lablup/tf:2.11');
    expect((await request(api.app).get('/api/v1/admin/images').set(admin()).expect(200)).body.items.map((i: { name: string }) => i.name)).toEqual(expect.arrayContaining([name, 'python:3.11']));
    await request(api.app).delete(path).set(admin()).expect(204);
    const gone = await request(api.app).get(path).set(admin()).expect(404);
    expect(gone.body).toMatchObject({ code: 'ImageNotFound', image: name });
    expect((await request(api.app).delete(path).set(admin()).expect(404)).body.code).toBe('ImageNotFound');
  });

  it('refuse bad bodies with 400 naming the fields, writing nothing', async () => {
    const res = await request(api.app).post('/api/v1/admin/images').set(admin()).send({ name: 'no-tag', reference: 'x y', resources: { cpu: '1', memory: 'lots' }, extra: 1 }).expect(400);
    expect(res.body.code).toBe('ValidationFailed');
    expect(fields(res.body)).toEqual(['body', 'body.name', 'body.reference', 'body.resources.memory']);
    expect((await request(api.app).get('/api/v1/admin/images/no-tag').set(admin()).expect(400)).body.code).toBe('ValidationFailed');
  });
});

describe('templates', () => {
  it('are put, read by admins and users, replaced and deleted; an unknown one is TemplateNotFound', async () => {
    const id = `e2e-${tag}-basic-python`;
    const params = { image: 'python:3.11', resources: { cpu: '2', memory: '4G' }, env: { A: '1' } };
    const created = await request(api.app).put(`/api/v1/admin/templates/${id}`).set(admin()).send({ params }).expect(201);
    expect(created.body).toMatchObject({ id, params });
    await request(api.app).put(`/api/v1/admin/templates/${id}`).set(admin()).send({ params: { ...params, priority: 5 } }).expect(200);
    expect((await request(api.app).get(`/api/v1/session-templates/${id}`).set(user()).expect(200)).body.params).toEqual({ ...params, priority: 5 });
    expect((await request(api.app).get('/api/v1/session-templates').set(user()).expect(200)).body.items.map((t: { id: string }) => t.id)).toContain(id);
    expect((await request(api.app).get('/api/v1/admin/templates').set(admin()).expect(200)).body.items.map((t: { id: string }) => t.id)).toContain(id);
    await request(api.app).delete(`/api/v1/admin/templates/${id}`).set(admin()).expect(204);
    for (const res of [
      await request(api.app).get(`/api/v1/session-templates/${id}`).set(user()),
      await request(api.app).get('/api/v1/admin/templates/non-existent-template').set(admin()),
      await request(api.app).delete(`/api/v1/admin/templates/${id}`).set(admin()),
    ]) expect([res.status, res.body.code]).toEqual([404, 'TemplateNotFound']);
  });

  it('refuse params that could never be valid, naming the field', async () => {
    const res = await request(api.app).put(`/api/v1/admin/templates/e2e-${tag}-bad`).set(admin()).send({ params: { resources: { cpu: 'many' }, cluster_size: 0, colour: 'red' } }).expect(400);
    expect(fields(res.body)).toEqual(['body.params', 'body.params.cluster_size', 'body.params.resources.cpu']);
    expect(fields((await request(api.app).put('/api/v1/admin/templates/Bad%20Id').set(admin()).send({ params: {} }).expect(400)).body)).toEqual(['params.id']);
  });
});

describe('resource policies', () => {
  it('show the configured default until set, then the policy and usage; delete restores the default', async () => {
    const path = `/api/v1/admin/resource-policies/${api.userId}`;
    expect((await request(api.app).get(path).set(admin()).expect(200)).body).toEqual({
      user_id: api.userId, max_sessions: infra.config.COMPUTE_DEFAULT_MAX_SESSIONS, default: true, max_customized_images: infra.config.COMPUTE_DEFAULT_MAX_CUSTOMIZED_IMAGES,
      resources: { cpu: infra.config.COMPUTE_DEFAULT_CPU, memory: infra.config.COMPUTE_DEFAULT_MEMORY, gpu: infra.config.COMPUTE_DEFAULT_GPU },
      usage: { sessions: 0, resources: { cpu: '0', memory: '0', gpu: '0' }, customized_images: 0 },
      abuse_cpu_warning_percent: infra.config.COMPUTE_DEFAULT_ABUSE_CPU_WARNING_PERCENT, abuse_cpu_percent: infra.config.COMPUTE_DEFAULT_ABUSE_CPU_PERCENT,
      abuse_memory_percent: infra.config.COMPUTE_DEFAULT_ABUSE_MEMORY_PERCENT, abuse_action: infra.config.COMPUTE_DEFAULT_ABUSE_ACTION,
    });
    const set = await request(api.app).put(path).set(admin()).send({ max_sessions: 3, resources: { cpu: '4', memory: '8192M', gpu: '0.5' }, max_customized_images: 2 }).expect(200);
    expect(set.body).toMatchObject({ max_sessions: 3, default: false, resources: { cpu: '4', memory: '8G', gpu: '0.5' }, max_customized_images: 2 });
    expect((await request(api.app).get(path).set(admin()).expect(200)).body.default).toBe(false);
    await request(api.app).delete(path).set(admin()).expect(204);
    expect((await request(api.app).get(path).set(admin()).expect(200)).body.default).toBe(true);
  });

  it('refuse a bad body with the fields and an unknown user with UserNotFound', async () => {
    const bad = await request(api.app).put(`/api/v1/admin/resource-policies/${api.userId}`).set(admin()).send({ max_sessions: -1, resources: { cpu: 'x', memory: '1G' } }).expect(400);
    expect(fields(bad.body)).toEqual(['body.max_sessions', 'body.resources.cpu']);
    const unknown = await request(api.app).get(`/api/v1/admin/resource-policies/${randomUUID()}`).set(admin()).expect(404);
    expect(unknown.body.code).toBe('UserNotFound');
    expect(fields((await request(api.app).get('/api/v1/admin/resource-policies/nobody').set(admin()).expect(400)).body)).toEqual(['params.userId']);
  });
});

describe('scaling groups and nodes', () => {
  it('create a group, show its node with capacity, used, free and liveness, toggle schedulable, and delete it only once unused', async () => {
    const group = `e2e-${tag}-gpu-cluster`;
    const created = await request(api.app).post('/api/v1/admin/scaling-groups').set(admin()).send({ name: group, description: 'GPUs' }).expect(201);
    expect(created.body).toMatchObject({ name: group, description: 'GPUs', nodes: 0 });
    expect(fields((await request(api.app).post('/api/v1/admin/scaling-groups').set(admin()).send({ name: group }).expect(400)).body)).toEqual(['body.name']);
    expect(fields((await request(api.app).post('/api/v1/admin/scaling-groups').set(admin()).send({ name: 'Has Spaces' }).expect(400)).body)).toEqual(['body.name']);

    const node = `e2e-${tag}-n1`;
    nodes.push(node);
    await infra.pool.query(`INSERT INTO compute_nodes (name, scaling_group, task_queue, cpu_millis, memory_bytes, gpu) VALUES ($1, $2, $3, 8000, $4, 2)`, [node, group, `node/${node}`, 32 * 2 ** 30]);
    const inUse = await request(api.app).delete(`/api/v1/admin/scaling-groups/${group}`).set(admin()).expect(409);
    expect(inUse.body).toMatchObject({ code: 'ScalingGroupInUse', scaling_group: group });

    const listed = (await request(api.app).get('/api/v1/admin/nodes').set(admin()).expect(200)).body.items.find((n: { name: string }) => n.name === node);
    expect(listed).toMatchObject({
      scaling_group: group, task_queue: `node/${node}`, capacity: { cpu: '8', memory: '32G', gpu: '2' }, used: { cpu: '0', memory: '0', gpu: '0' },
      free: { cpu: '8', memory: '32G', gpu: '2' }, alive: true, schedulable: true, last_heartbeat_at: expect.any(String),
    });
    expect((await request(api.app).patch(`/api/v1/admin/nodes/${node}`).set(admin()).send({ schedulable: false }).expect(200)).body.schedulable).toBe(false);
    expect(fields((await request(api.app).patch(`/api/v1/admin/nodes/${node}`).set(admin()).send({ schedulable: 'no' }).expect(400)).body)).toEqual(['body.schedulable']);
    expect((await request(api.app).patch('/api/v1/admin/nodes/nowhere').set(admin()).send({ schedulable: true }).expect(404)).body.code).toBe('NotFound');
    expect((await request(api.app).get('/api/v1/admin/scaling-groups').set(admin()).expect(200)).body.items).toContainEqual(expect.objectContaining({ name: group, nodes: 1 }));

    await infra.pool.query('DELETE FROM compute_nodes WHERE name = $1', [node]);
    await request(api.app).delete(`/api/v1/admin/scaling-groups/${group}`).set(admin()).expect(204);
    expect((await request(api.app).delete(`/api/v1/admin/scaling-groups/${group}`).set(admin()).expect(404)).body.code).toBe('NotFound');
  });
});
