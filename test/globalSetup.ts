import { Connection } from '@temporalio/client';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { customSearchAttributes } from '../domain/shared/searchAttributes';
import { writeWorkflowBundle } from '../scripts/bundle-workflows';
import { testNamespace } from './helpers/testRun';

/**
 * Once per jest run: make sure the one Temporal dev server is up (reusing a running one) with
 * the tests' namespace and its search attributes, name the run, and bundle the workflow code
 * once for every test that runs a worker. What is set in process.env here, the test workers
 * inherit.
 */
export default async function globalSetup(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const namespace = testNamespace();
  // loadConfig() in tests and in the processes they spawn reads the namespace from here.
  process.env.TEMPORAL_NAMESPACE = namespace;
  process.env.SF_TEST_RUN = randomUUID().slice(0, 8);
  if (!(await namespaceReady(address, namespace))) {
    const started = spawnSync(resolve(__dirname, '../scripts/start-temporal.sh'), [namespace], { stdio: 'inherit', env: { ...process.env, TEMPORAL_PORT: address.split(':')[1] } });
    if (started.status !== 0) throw new Error(`could not start the Temporal dev server for ${address} with namespace ${namespace}`);
  }
  const bundlePath = join(tmpdir(), `sessionflow-workflows-${process.pid}.js`);
  await writeWorkflowBundle(bundlePath, require.resolve('../workflows'));
  process.env.SF_TEST_WORKFLOW_BUNDLE = bundlePath;
}

/** The server answers, and the namespace exists with every custom search attribute (as scripts/test.sh leaves it). */
async function namespaceReady(address: string, namespace: string): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: 2000 });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
      return customSearchAttributes.every(({ name }) => name in customAttributes);
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}
