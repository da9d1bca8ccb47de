import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { createApp } from '../../api/platform/app';
import { createUserKey } from '../../api/platform/auth';
import { createLogger } from '../../platform/logger';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv, uniqueTaskQueue } from '../helpers/temporal';
import { bearer } from '../helpers/terminal';

/**
 * Cross-site request forgery paths: a browser sends a text/plain body or a form to any site
 * without a preflight, and replays HTTP Basic credentials it remembers. Only the clients that
 * cannot set headers get them: Piston clients (Basic, text/plain JSON) and the close beacon
 * (text/plain JSON or a form, carrying the session's token).
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let app: Express;
let adminKey: string;
let userKey: string;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  // No worker polls this queue: nothing these requests could start would ever run.
  app = createApp({ config: { ...infra.config, TEMPORAL_TASK_QUEUE: uniqueTaskQueue('headerless') }, temporal: env.client, pool: infra.pool, docker: infra.docker, log: createLogger('silent', 'headerless-test') });
  const suffix = randomUUID().slice(0, 8);
  ({ key: adminKey } = await createUserKey(infra.pool, `csrf-admin-${suffix}`, 'admin', 'test'));
  ({ key: userKey } = await createUserKey(infra.pool, `csrf-user-${suffix}`, 'user', 'test'));
});
afterAll(async () => {
  await infra.close();
  await env.teardown();
});

const basic = (key: string) => ({ Authorization: `Basic ${Buffer.from(`anyone:${key}`).toString('base64')}` });

describe('JSON sent as text/plain', () => {
  it('is refused with 415 by a route whose clients can set a content type', async () => {
    const res = await request(app).post('/api/v1/admin/self-check').set(bearer(adminKey)).type('text/plain').send(JSON.stringify({ checks: ['docker'] })).expect(415);
    expect(res.body).toMatchObject({ code: 'UnsupportedMediaType', accepted: ['application/json'] });
    const terminal = await request(app).post('/api/v1/terminals').set(bearer(userKey)).type('text/plain').send(JSON.stringify({ host_id: randomUUID() })).expect(415);
    expect(terminal.body.code).toBe('UnsupportedMediaType');
  });

  it('is refused as a form too, except by the close beacon', async () => {
    const res = await request(app).post('/api/v1/terminals').set(bearer(userKey)).type('form').send({ host_id: randomUUID() }).expect(415);
    expect(res.body.code).toBe('UnsupportedMediaType');
    // The beacon parses both (its token decides; an unknown session is a 404, not a 415).
    const id = randomBytes(32).toString('hex');
    await request(app).post(`/api/v1/terminals/${id}/close-beacon`).type('text/plain').send(JSON.stringify({ token: 'x' })).expect(404);
    await request(app).post(`/api/v1/terminals/${id}/close-beacon`).type('form').send({ token: 'x' }).expect(404);
  });

  it('is parsed as JSON by the Piston execute route', async () => {
    // An unknown runtime is named from the parsed body: it was read as JSON, not refused.
    const res = await request(app).post('/api/v2/execute').set(bearer(userKey)).type('text/plain')
      .send(JSON.stringify({ language: 'cobol-1960', version: '*', files: [{ content: 'x' }] })).expect(400);
    expect(res.body).toMatchObject({ code: 'RuntimeNotFound', message: expect.stringContaining('cobol-1960') });
  });

  it('still leaves JSON routes their JSON', async () => {
    const res = await request(app).post('/api/v1/terminals').set(bearer(userKey)).send({ host_id: randomUUID() }).expect(404);
    expect(res.body.code).toBe('HostNotFound');
  });
});

describe('HTTP Basic credentials', () => {
  it('are taken by the Piston routes', async () => {
    const res = await request(app).get('/api/v2/runtimes').set(basic(userKey)).expect(200);
    expect(res.body).toEqual(expect.arrayContaining([expect.objectContaining({ language: 'python' })]));
  });

  it('are refused with 401 everywhere else, with a Bearer challenge (never a Basic one a browser would remember)', async () => {
    for (const [method, path] of [['get', '/api/v1/terminals'], ['get', '/api/v1/admin/hosts'], ['post', '/api/v1/admin/self-check']] as const) {
      const res = await request(app)[method](path).set(basic(adminKey)).expect(401);
      expect({ path, code: res.body.code, challenge: res.headers['www-authenticate'] }).toEqual({ path, code: 'Unauthenticated', challenge: 'Bearer realm="sessionflow"' });
    }
  });
});
