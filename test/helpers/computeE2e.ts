import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createUserKey } from '../../api/platform/auth';
import { startApiHarness, type ApiHarness } from './api';
import { removeComputeLeftovers, startTestComputeNode } from './computeNode';
import { openInfra, type Infra } from './infra';
import { connectTestEnv } from './temporal';

export interface ComputeE2e {
  env: TestWorkflowEnvironment;
  infra: Infra;
  api: ApiHarness;
  /** A second user, whose requests must not reach the test user's sessions. */
  other: { key: string; userId: string };
  /** The test's own scaling group, with one node on the main engine. */
  group: string;
  tag: string;
  /** Every session the test made (removed at the end). */
  sessions: string[];
  /** Creates a session in the test's group as the test's user and expects it RUNNING; answers the session as the api did. */
  createRunning(body?: Record<string, unknown>): Promise<{ id: string } & Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * What the compute e2e tests share: the real api with a worker, one real node on the main
 * engine in a scaling group of the test's own, a second user, and the removal of everything the
 * test made. `short` names the group (`e2e-<short>-<tag>`).
 */
export async function startComputeE2e(short: string, config: Parameters<typeof startApiHarness>[2] = {}): Promise<ComputeE2e> {
  const env = await connectTestEnv();
  const infra = openInfra();
  const api = await startApiHarness(env, infra, { COMPUTE_CREATE_WAIT_SECONDS: 60, ...config });
  const tag = randomUUID().slice(0, 8);
  const group = `e2e-${short}-${tag}`;
  const other = await createUserKey(infra.pool, `other-${tag}`, 'user', 'test');
  const node = await startTestComputeNode(env, infra, { group, name: `${group}-a` });
  const sessions: string[] = [];
  return {
    env, infra, api, other, group, tag, sessions,
    async createRunning(body = {}) {
      const created = await request(api.app).post('/api/v1/sessions').set({ Authorization: `Bearer ${api.userKey}` })
        .send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '1', memory: '256M' }, ...body });
      if (created.body.id) sessions.push(created.body.id as string);
      expect(created.status).toBe(201);
      expect(created.body.status).toBe('RUNNING');
      return created.body as { id: string } & Record<string, unknown>;
    },
    async stop() {
      await node.stop();
      await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, sessions, []);
      await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = ANY($1::uuid[])', [[api.userId, other.userId]]);
      await infra.pool.query('DELETE FROM compute_nodes WHERE scaling_group = $1', [group]);
      await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = $1', [group]);
      await infra.pool.query('DELETE FROM users WHERE id = $1', [other.userId]);
      await api.stop();
      await infra.close();
      await env.teardown();
    },
  };
}
