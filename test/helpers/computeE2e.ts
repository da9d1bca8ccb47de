import type { TestWorkflowEnvironment } from '@temporalio/testing';
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
  /** A second user, for the owner checks. */
  other: { key: string; userId: string };
  /** Shuts the node and the api down and removes what the test made (its sessions' containers and rows, the group, the second user). */
  stop(): Promise<void>;
}

/**
 * What an e2e test of working in compute sessions through HTTP stands on: the api and the
 * session workflows on a worker, one real node on the main Docker engine in a scaling group of
 * the test's own (`<group>-a`), and a second user. `sessions` is the test's list of the
 * sessions it made, read at the end for the clean-up.
 */
export async function startComputeE2e({ group, sessions, config = {} }: { group: string; sessions: readonly string[]; config?: Partial<Infra['config']> }): Promise<ComputeE2e> {
  const env = await connectTestEnv();
  const infra = openInfra();
  const api = await startApiHarness(env, infra, { COMPUTE_CREATE_WAIT_SECONDS: 60, ...config });
  const other = await createUserKey(infra.pool, `other-${group}`, 'user', 'test');
  const node = await startTestComputeNode(env, infra, { group, name: `${group}-a` });
  return {
    env, infra, api, other,
    async stop() {
      await node.stop();
      await removeComputeLeftovers(infra.docker, infra.config.SESSIONFLOW_INSTANCE, [...sessions], []);
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
