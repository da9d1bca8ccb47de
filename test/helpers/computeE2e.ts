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
  /** The api with a worker on a queue of its own; its user owns the test's sessions. */
  api: ApiHarness;
  /** Another user, whose key must see none of the test user's sessions. */
  other: { key: string; userId: string };
  /** The test's scaling group; its node is `<group>-a`. */
  group: string;
  tag: string;
  /** Sessions the test made (createSession adds its own; a test pushes those it makes otherwise): teardown removes them. */
  sessions: string[];
  /** Images the test made (by name): teardown removes them. */
  images: string[];
  /** Creates a session of the test user in the test's scaling group and expects it RUNNING; answers its id. */
  createSession(body?: Record<string, unknown>): Promise<string>;
  /** Shuts the node and the api down and removes what the test made (containers and rows, the group, the other user). */
  teardown(): Promise<void>;
}

/**
 * What an e2e test of working in compute sessions through HTTP stands on: the api and the
 * session workflows on a worker, one real node (the main engine) in a scaling group of the
 * test's own (`<prefix>-<tag>`, or `group`), the test user and another one.
 */
export async function startComputeE2e({ prefix = 'e2e', group: named, sessions = [], config = {} }: {
  prefix?: string; group?: string; sessions?: string[]; config?: Partial<Infra['config']>;
} = {}): Promise<ComputeE2e> {
  const env = await connectTestEnv();
  const infra = openInfra();
  const api = await startApiHarness(env, infra, { COMPUTE_CREATE_WAIT_SECONDS: 60, ...config });
  const tag = randomUUID().slice(0, 8);
  const group = named ?? `${prefix}-${tag}`;
  const other = await createUserKey(infra.pool, `other-${group}`, 'user', 'test');
  const node = await startTestComputeNode(env, infra, { group, name: `${group}-a` });
  const images: string[] = [];
  return {
    env, infra, api, other, group, tag, sessions, images,
    async createSession(body = {}) {
      const created = await request(api.app).post('/api/v1/sessions').set({ Authorization: `Bearer ${api.userKey}` })
        .send({ image: 'python:3.11', scaling_group: group, resources: { cpu: '1', memory: '256M' }, ...body });
      if (created.body.id) sessions.push(created.body.id as string);
      if (created.status !== 201 || created.body.status !== 'RUNNING') throw new Error(`the session did not come up: ${created.status} ${JSON.stringify(created.body).slice(0, 500)}`);
      return created.body.id as string;
    },
    async teardown() {
      await node.stop();
      await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, [...sessions], []);
      await infra.pool.query('DELETE FROM compute_sessions WHERE owner_id = ANY($1::uuid[])', [[api.userId, other.userId]]);
      await infra.pool.query('DELETE FROM compute_nodes WHERE scaling_group = $1', [group]);
      await infra.pool.query('DELETE FROM compute_scaling_groups WHERE name = $1', [group]);
      await infra.pool.query('DELETE FROM compute_images WHERE name = ANY($1::text[])', [images]);
      await infra.pool.query('DELETE FROM users WHERE id = $1', [other.userId]);
      await api.stop();
      await infra.close();
      await env.teardown();
    },
  };
}
