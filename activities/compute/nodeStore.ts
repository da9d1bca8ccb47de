import type { Pool } from 'pg';
import type { ResourceSlots } from '../../domain/compute/compute';

export interface NodeRegistration {
  name: string;
  scalingGroup: string;
  taskQueue: string;
  capacity: ResourceSlots;
}

export class ScalingGroupMissingError extends Error {
  override name = 'ScalingGroupMissingError';
}

/** A compute node's own rows in compute_nodes: its registration at start, then its heartbeat. */
export function createNodeStore(pool: Pool) {
  return {
    /**
     * Upserts the node's row with what it declares now (a node restarted with another capacity
     * or group says so); `schedulable` is the admins' and is kept. The scaling group must exist.
     */
    async register({ name, scalingGroup, taskQueue, capacity }: NodeRegistration): Promise<void> {
      try {
        await pool.query(
          `INSERT INTO compute_nodes (name, scaling_group, task_queue, cpu_millis, memory_bytes, gpu)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (name) DO UPDATE SET scaling_group = EXCLUDED.scaling_group, task_queue = EXCLUDED.task_queue,
             cpu_millis = EXCLUDED.cpu_millis, memory_bytes = EXCLUDED.memory_bytes, gpu = EXCLUDED.gpu,
             registered_at = now(), last_heartbeat_at = now()`,
          [name, scalingGroup, taskQueue, capacity.cpuMillis, capacity.memoryBytes, capacity.gpu],
        );
      } catch (err) {
        if ((err as { code?: string }).code === '23503') throw new ScalingGroupMissingError(`compute node ${name}: scaling group ${scalingGroup} does not exist (an admin creates it)`);
        throw err;
      }
    },

    /**
     * A node that stops on purpose says so: its heartbeat goes far into the past, so nothing new
     * is placed on it from now on (its running sessions are checked as any dead node's; a node
     * started again within COMPUTE_AGENT_TIMEOUT_SECONDS loses none of them).
     */
    async signOff(name: string): Promise<void> {
      await pool.query("UPDATE compute_nodes SET last_heartbeat_at = 'epoch' WHERE name = $1", [name]);
    },

    /** false when the row is gone (an admin removed the node): the caller registers again. */
    async heartbeat(name: string): Promise<boolean> {
      const { rowCount } = await pool.query('UPDATE compute_nodes SET last_heartbeat_at = now() WHERE name = $1', [name]);
      return rowCount === 1;
    },
  };
}
