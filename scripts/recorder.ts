import { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createActivities } from '../activities';
import { loadConfig } from '../platform/config';
import { createPool } from '../platform/database';
import { createDocker } from '../platform/docker';
import { activityDepsFrom } from '../workers/activityDeps';

/** What every history recorder (scripts/record-*-histories.ts) runs its workflows with. */
export async function openRecorder(poolSize = 2) {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const pool = createPool(config.DATABASE_URL, poolSize);
  const docker = createDocker(config.DOCKER_SOCKET);
  const activities = createActivities(activityDepsFrom(config, { docker, pool }));
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  return {
    config, pool, docker, activities, connection, client,
    /** The bundle `npm run build` wrote, which the recorders' workers run. */
    workflowBundlePath: resolve(__dirname, '../workflow-bundle.js'),
    /** What a compute recorder made in the database: its owner's sessions, its scaling group and nodes, the owner. */
    async removeComputeRecording(ownerId: string, group: string): Promise<void> {
      await pool.query('DELETE FROM compute_sessions WHERE owner_id = $1', [ownerId]);
      await pool.query('DELETE FROM compute_nodes WHERE scaling_group = $1', [group]);
      await pool.query('DELETE FROM compute_scaling_groups WHERE name = $1', [group]);
      await pool.query('DELETE FROM users WHERE id = $1', [ownerId]);
    },
    async close(): Promise<void> {
      await connection.close();
      await pool.end();
    },
  };
}

const historiesDir = resolve(__dirname, '../../test/replay/histories');

/**
 * `RECORD_ONLY=<regular expression>`: only histories whose file name matches are written, so new
 * scenarios can be recorded while the histories of running workflows' older code stay as they are.
 */
const recordOnly = process.env.RECORD_ONLY ? new RegExp(process.env.RECORD_ONLY) : undefined;

/** Writes a history where test/replay/replay.test.ts replays it, in Temporal's JSON form. */
export async function saveHistory(history: temporal.api.history.v1.IHistory, file: string): Promise<void> {
  if (recordOnly && !recordOnly.test(file)) {
    console.log(`kept ${file} (RECORD_ONLY)`);
    return;
  }
  await writeFile(join(historiesDir, file), `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`);
  console.log(`recorded ${file} (${history.events?.length} events)`);
}
