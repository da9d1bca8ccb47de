import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createApp } from '../../api/platform/app';
import { createUserKey } from '../../api/platform/auth';
import { toProblem } from '../../api/platform/problems';
import { createPool } from '../../platform/database';
import { createLogger } from '../../platform/logger';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';

/**
 * A dependency that is away answers 503 DependencyUnavailable with Retry-After, never a 500 and
 * never a request that hangs: PostgreSQL refusing connections, PostgreSQL accepting and never
 * speaking (the connect timeout), a statement past the statement timeout, Temporal away.
 */
let env: TestWorkflowEnvironment;
let infra: Infra;
let key: string;
let silent: Server;
const sockets: Socket[] = [];

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  ({ key } = await createUserKey(infra.pool, `outage-${Date.now().toString(36)}`, 'admin', 'test'));
  // Accepts connections and never answers: a PostgreSQL that hangs.
  silent = createServer((socket) => sockets.push(socket)).listen(0, '127.0.0.1');
  await new Promise((resolve) => silent.once('listening', resolve));
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  silent.close();
  await infra.close();
  await env.teardown();
});

function appWith(overrides: { databaseUrl?: string; temporal?: Client }) {
  const pool = overrides.databaseUrl ? createPool(overrides.databaseUrl, 2, { connectTimeoutMs: 500, statementTimeoutMs: 500 }) : infra.pool;
  const app = createApp({ config: infra.config, temporal: overrides.temporal ?? env.client, pool, docker: infra.docker, log: createLogger('silent', 'outage-test') });
  return { app, close: () => (pool === infra.pool ? Promise.resolve() : pool.end()) };
}

const bearer = () => ({ Authorization: `Bearer ${key}` });

it('answers 503 naming PostgreSQL when it refuses connections', async () => {
  const { app, close } = appWith({ databaseUrl: 'postgres://postgres@127.0.0.1:1/sessionflow' });
  const res = await request(app).get('/api/v2/runtimes').set(bearer()).expect(503);
  expect(res.body).toMatchObject({ code: 'DependencyUnavailable' });
  expect(res.headers['retry-after']).toBe('5');
  await close();
});

it('answers 503 within the connect timeout when PostgreSQL accepts and never answers', async () => {
  const { port } = silent.address() as AddressInfo;
  const { app, close } = appWith({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/sessionflow` });
  const res = await request(app).get('/api/v1/terminals').set(bearer()).expect(503);
  expect(res.body).toMatchObject({ code: 'DependencyUnavailable', dependency: 'PostgreSQL' });
  await close();
});

it('turns a statement past the statement timeout into a 503, cancelled by the server', async () => {
  const pool = createPool(infra.config.DATABASE_URL, 1, { connectTimeoutMs: 2_000, statementTimeoutMs: 300 });
  const err = await pool.query('SELECT pg_sleep(5)').catch((e: unknown) => e);
  await pool.end();
  expect(err).toMatchObject({ code: '57014' });
  expect(toProblem(err)).toMatchObject({ status: 503, body: { code: 'DependencyUnavailable', dependency: 'PostgreSQL' } });
});

it('answers 503 naming Temporal when its frontend does not answer', async () => {
  const connection = Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 });
  const temporal = new Client({ connection, namespace: 'default' });
  const { app } = appWith({ temporal });
  const res = await request(app).post('/api/v1/admin/self-check').set(bearer()).send({}).expect(503);
  expect(res.body).toMatchObject({ code: 'DependencyUnavailable', dependency: 'Temporal' });
  await connection.close();
});
