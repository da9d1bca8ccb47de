import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { eventually, startApiHarness, type ApiHarness } from '../helpers/api';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let infra: Infra;
let api: ApiHarness;
beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  api = await startApiHarness(env, infra);
});
afterAll(async () => {
  await api.stop();
  await infra.close();
  await env.teardown();
});

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

describe('POST /api/v1/admin/self-check', () => {
  it('runs every check against the real infrastructure and reports each with its duration', async () => {
    const started = await request(api.app).post('/api/v1/admin/self-check').set(bearer(api.adminKey)).expect(202);
    expect(started.body).toMatchObject({ id: expect.any(String), workflow_id: `self-check/${started.body.id}`, status: 'RUNNING' });
    expect(started.headers.location).toBe(`/api/v1/admin/self-check/${started.body.id}`);

    const finished = await eventually(
      () => request(api.app).get(started.headers.location!).set(bearer(api.adminKey)),
      (res) => res.body.status !== 'RUNNING',
    );
    expect(finished.status).toBe(200);
    expect(finished.body.status).toBe('PASSED');
    expect(finished.body.checks.map((c: { name: string }) => c.name)).toEqual(['docker', 'container', 'database', 'registry']);
    for (const check of finished.body.checks) {
      expect(check).toMatchObject({ ok: true, duration_ms: expect.any(Number), detail: expect.any(String) });
    }
    expect(finished.body.web_ui).toContain(encodeURIComponent(started.body.workflow_id));
  });

  it('is listed by `temporal workflow list` with its search attributes', async () => {
    const { body } = await request(api.app).post('/api/v1/admin/self-check').set(bearer(api.adminKey)).send({ checks: ['database'] }).expect(202);
    const temporal = process.env.TEMPORAL_BIN ?? join(homedir(), '.sessionflow/bin/temporal');
    const query = `SessionKind='self-check' AND WorkflowId='${body.workflow_id}'`;
    // Visibility is eventually consistent: wait until the list shows it.
    const listed = await eventually(
      async () => execFileSync(temporal, ['workflow', 'list', '--address', process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233', '--namespace', env.namespace!, '--query', query, '--output', 'json'], { encoding: 'utf8' }),
      (out) => out.includes(body.workflow_id),
    );
    expect(listed).toContain(body.workflow_id);
  });

  it('refuses the key as the password of HTTP Basic: only the Piston routes take it (a browser replays Basic cross-site)', async () => {
    const basic = Buffer.from(`anyone:${api.adminKey}`).toString('base64');
    const res = await request(api.app).post('/api/v1/admin/self-check').set({ Authorization: `Basic ${basic}` }).send({ checks: ['docker'] }).expect(401);
    expect(res.body).toMatchObject({ code: 'Unauthenticated', detail: expect.stringContaining('Piston') });
    expect(res.headers['www-authenticate']).toBe('Bearer realm="sessionflow"');
  });

  it('answers 401 without a key, and with a key it does not know', async () => {
    const none = await request(api.app).post('/api/v1/admin/self-check').expect(401);
    expect(none.headers['content-type']).toContain('application/problem+json');
    expect(none.body).toMatchObject({ code: 'Unauthenticated', status: 401 });
    const wrong = await request(api.app).post('/api/v1/admin/self-check').set(bearer('sf_not-a-real-key')).expect(401);
    expect(wrong.body.code).toBe('Unauthenticated');
  });

  it('answers 403 to a user who is not an admin, and starts nothing', async () => {
    const res = await request(api.app).post('/api/v1/admin/self-check').set(bearer(api.userKey)).expect(403);
    expect(res.body).toMatchObject({ code: 'Forbidden', required_role: 'admin' });
    // Visibility is eventually consistent: once a workflow started after the refusal is
    // listed, one started by the refused request would be listed too.
    const { body: later } = await request(api.app).post('/api/v1/admin/self-check').set(bearer(api.adminKey)).send({ checks: ['docker'] }).expect(202);
    await eventually(() => env.client.workflow.count(`WorkflowId='${later.workflow_id}'`), (c) => c.count === 1);
    const refused = await env.client.workflow.count(`OwnerId='${api.userId}'`);
    expect(refused.count).toBe(0);
  });

  it('answers 400 naming the offending field for a bad body', async () => {
    const res = await request(api.app).post('/api/v1/admin/self-check').set(bearer(api.adminKey)).send({ checks: ['docker', 'teleporter'] }).expect(400);
    expect(res.body).toMatchObject({ code: 'ValidationFailed', errors: [expect.objectContaining({ field: 'body.checks.1' })] });
    const unknown = await request(api.app).post('/api/v1/admin/self-check').set(bearer(api.adminKey)).send({ probe: true }).expect(400);
    expect(unknown.body.errors[0].message).toMatch(/probe/);
  });

  it('answers 400 for malformed JSON', async () => {
    const res = await request(api.app).post('/api/v1/admin/self-check').set(bearer(api.adminKey)).set('Content-Type', 'application/json').send('{"checks": [').expect(400);
    expect(res.body.code).toBe('ValidationFailed');
  });
});

describe('GET /api/v1/admin/self-check/:id', () => {
  it('answers 404 for an id it never started and 400 for one that is not a UUID', async () => {
    const missing = await request(api.app).get('/api/v1/admin/self-check/00000000-0000-4000-8000-000000000000').set(bearer(api.adminKey)).expect(404);
    expect(missing.body.code).toBe('NotFound');
    const malformed = await request(api.app).get('/api/v1/admin/self-check/nope').set(bearer(api.adminKey)).expect(400);
    expect(malformed.body.errors[0].field).toBe('params.id');
  });
});

describe('platform routes', () => {
  it('says it is alive', async () => {
    await request(api.app).get('/healthz').expect(200, { status: 'ok' });
  });

  it('is ready when Temporal, PostgreSQL, Docker and the registry all answer', async () => {
    const res = await request(api.app).get('/readyz').expect(200);
    expect(res.body.dependencies).toEqual({ temporal: { ok: true }, postgres: { ok: true }, docker: { ok: true }, registry: { ok: true } });
  });

  it('is not ready, naming the registry, when the registry does not answer', async () => {
    const broken = await startApiHarness(env, infra, { REGISTRY_ADDRESS: '127.0.0.1:9' });
    try {
      const res = await request(broken.app).get('/readyz').expect(503);
      expect(res.body).toMatchObject({ code: 'DependencyUnavailable', failing: ['registry'] });
    } finally {
      await broken.stop();
    }
  });

  it('exports request metrics in Prometheus format', async () => {
    await request(api.app).get('/healthz');
    const res = await request(api.app).get('/metrics').expect(200);
    expect(res.text).toMatch(/sessionflow_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} \d+/);
  });

  it('answers an unknown route with a RouteNotFound problem', async () => {
    const res = await request(api.app).get('/api/v1/nowhere').expect(404);
    expect(res.body.code).toBe('RouteNotFound');
  });
});
