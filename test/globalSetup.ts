import { Connection } from '@temporalio/client';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeWorkflowBundle } from '../scripts/bundle-workflows';

/**
 * Once per jest run: make sure the one Temporal dev server is up (reusing a running one),
 * and bundle the workflow code once for every test that runs a worker.
 */
export default async function globalSetup(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  if (!(await temporalAnswers(address))) {
    const started = spawnSync(resolve(__dirname, '../scripts/start-temporal.sh'), { stdio: 'inherit', env: { ...process.env, TEMPORAL_PORT: address.split(':')[1] } });
    if (started.status !== 0) throw new Error(`could not start the Temporal dev server for ${address}`);
  }
  const bundlePath = join(tmpdir(), `sessionflow-workflows-${process.pid}.js`);
  await writeWorkflowBundle(bundlePath, require.resolve('../workflows'));
  process.env.SF_TEST_WORKFLOW_BUNDLE = bundlePath;
}

async function temporalAnswers(address: string): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: 2000 });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}
