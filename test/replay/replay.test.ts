import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DeterminismViolationError } from '@temporalio/workflow';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectTestEnv, workflowBundlePath } from '../helpers/temporal';

/**
 * Every history recorded from a real run (scripts/record-histories.sh) must replay against
 * the current workflow code: a change that would break running workflows fails here.
 */
const historiesDir = join(__dirname, 'histories');
const histories = readdirSync(historiesDir).filter((file) => file.endsWith('.json')).sort();
const load = (file: string) => historyFromJSON(JSON.parse(readFileSync(join(historiesDir, file), 'utf8')));

beforeAll(async () => {
  // Installs the quiet runtime before replay workers are created.
  await (await connectTestEnv()).teardown();
});

it('has recorded histories to replay', () => {
  expect(histories).toEqual(expect.arrayContaining(['selfCheck-passed.json', 'selfCheck-registry-refused.json']));
});

describe.each(histories)('history %s', (file) => {
  it('replays against the current workflow code', async () => {
    await expect(Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, load(file), file)).resolves.toBeUndefined();
  });
});

describe('the replay check itself', () => {
  let variant: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    const noop = () => undefined;
    variant = await bundleWorkflowCode({
      workflowsPath: require.resolve('./variants/selfCheckSequential'),
      logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop },
    });
  });

  it('fails with a determinism error when the workflow changed its command sequence', async () => {
    const failure = await Worker.runReplayHistory({ workflowBundle: variant }, load('selfCheck-passed.json'), 'negative-control').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DeterminismViolationError);
  });
});
