import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createApp } from '../../api/platform/app';
import { createUserKey } from '../../api/platform/auth';
import { createLogger } from '../../platform/logger';
import { openInfra, type Infra } from '../helpers/infra';
import { connectTestEnv } from '../helpers/temporal';

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

/** The real app on the test database, with its own keys; no route used here starts a workflow. */
async function appWithLimit(requests: number) {
  const app = createApp({
    config: { ...infra.config, API_RATE_LIMIT_REQUESTS: requests, API_RATE_LIMIT_WINDOW_SECONDS: 60 },
    temporal: env.client, pool: infra.pool, docker: infra.docker, log: createLogger('silent', 'rate-limit-test'),
  });
  const suffix = randomUUID().slice(0, 8);
  const [one, other] = await Promise.all([createUserKey(infra.pool, `limited-${suffix}`, 'user', 'test'), createUserKey(infra.pool, `other-${suffix}`, 'user', 'test')]);
  const get = (path: string, key?: string) => request(app).get(path).set(key ? { Authorization: `Bearer ${key}` } : {});
  return { app, one: one.key, other: other.key, get };
}

describe('the per-key request rate limit', () => {
  it('answers the N+1th request of one key 429 RateLimited with Retry-After, while another key still gets through', async () => {
    const { one, other, get } = await appWithLimit(3);
    for (let i = 0; i < 3; i++) {
      const ok = await get('/api/v2/runtimes', one).expect(200);
      expect(ok.headers.ratelimit).toMatch(new RegExp(`remaining=${2 - i}`));
    }
    const refused = await get('/api/v2/runtimes', one).expect(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // Piston clients read `message`: the /api/v2 answer carries it as every other error there.
    expect(refused.body).toMatchObject({ code: 'RateLimited', status: 429, limit: 3, windowSeconds: 60, retryAfterSeconds: Number(refused.headers['retry-after']), message: expect.stringMatching(/more than 3 requests/) });
    // Every authenticated route counts against the same key.
    await get('/api/v1/hosts', one).expect(429);
    await get('/api/v2/runtimes', other).expect(200);
  });

  it('never turns away health, readiness or metrics probes, and counts no request without a valid key', async () => {
    const { one, get } = await appWithLimit(1);
    await get('/api/v2/runtimes', one).expect(200);
    await get('/api/v2/runtimes', one).expect(429);
    for (let i = 0; i < 5; i++) {
      await get('/healthz').expect(200);
      await get('/metrics').expect(200);
      await get('/api/v2/runtimes', 'sf_not-a-key').expect(401);
    }
  });

  it('is off with API_RATE_LIMIT_REQUESTS=0, where the same requests under a limit are refused', async () => {
    const off = await appWithLimit(0);
    const limited = await appWithLimit(9);
    const statuses = async ({ one, get }: typeof off) => {
      const seen: number[] = [];
      for (let i = 0; i < 10; i++) seen.push((await get('/api/v2/runtimes', one)).status);
      return seen;
    };
    expect(await statuses(off)).toEqual(Array(10).fill(200));
    expect((await off.get('/api/v2/runtimes', off.one)).headers.ratelimit).toBeUndefined();
    expect(await statuses(limited)).toEqual([...Array(9).fill(200), 429]);
  });
});
