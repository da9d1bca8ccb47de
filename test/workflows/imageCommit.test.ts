// The imageCommit workflow's own code on the real dev server, with a main worker and a node
// worker; its activities are fakes that inject faults into the push and record what ran
// (test/e2e/compute/commit.test.ts runs the real ones on Docker and two registries).
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Context } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { Activities } from '../../activities';
import { convertTarget, type CommitProgress, type ImageCommitInput } from '../../domain/compute/imageCommit';
import { makeImageCommitWorkflowId } from '../../domain/compute/kind';
import type { imageCommitWorkflow } from '../../workflows/compute/imageCommit';
import { connectTestEnv, createTestWorker, uniqueTaskQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await connectTestEnv();
});
afterAll(async () => {
  await env.teardown();
});

type PushFault = 'transient' | 'refused';

/** Fake node and control activities: each push heartbeats some layer progress, then fails as told for its attempt or succeeds. */
function recordingCommit(faults: PushFault[]) {
  const calls: string[] = [];
  let pushesInFlight = 0;
  let mostPushesInFlight = 0;
  let pushAttempt = 0;
  const node = {
    async commitKernel({ containerId }: { commitId: string; containerId: string }) {
      calls.push(`commit ${containerId}`);
      return { imageId: 'sha256:made', sizeBytes: 1000 };
    },
    async tagCommitImage({ repo, tag }: { commitId: string; repo: string; tag: string }) {
      calls.push(`tag ${repo}:${tag}`);
    },
    async pushCommitImage({ reference, progress }: { commitId: string; reference: string; progress: CommitProgress }): Promise<CommitProgress> {
      const fault = faults[pushAttempt++];
      pushesInFlight += 1;
      mostPushesInFlight = Math.max(mostPushesInFlight, pushesInFlight);
      calls.push(`push attempt ${pushAttempt} ${reference}`);
      try {
        const layers = { a: { current: 0, total: 600 } };
        for (const current of [100, 300]) {
          layers.a.current = current;
          Context.current().heartbeat({ ...progress, layers });
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        if (fault === 'transient') throw new Error('connection reset by peer');
        if (fault === 'refused') throw ApplicationFailure.create({ type: 'RegistryPushError', message: 'registry auth (127.0.0.1:5001) refused the push: unauthorized', nonRetryable: true });
        return { ...progress, phase: 'pushing', layers: { a: { current: 600, total: 600 } }, bytesPushed: 600, bytesTotal: 600 };
      } finally {
        pushesInFlight -= 1;
      }
    },
    async removeCommitImages({ references }: { commitId: string; references: string[] }) {
      calls.push(`remove ${references.join(' ')}`);
    },
    async unpublishCommitImage({ reference }: { commitId: string; reference: string }) {
      calls.push(`unpublish ${reference}`);
      return { removed: true };
    },
  };
  const control = {
    async recordImageCommitProgress({ progress }: { commitId: string; progress: CommitProgress }) {
      calls.push(`phase ${progress.phase}`);
    },
    async finishImageCommit({ status, error }: { commitId: string; status: string; error?: { code: string } }) {
      calls.push(`finish ${status}${error ? ` ${error.code}` : ''}`);
    },
    async registerCommitImage({ name, reference }: { name: string; reference: string }) {
      calls.push(`register ${name} ${reference}`);
    },
  };
  return { node, control, calls, mostPushesInFlight: () => mostPushesInFlight };
}

async function runCommit(faults: PushFault[]) {
  const fakes = recordingCommit(faults);
  const taskQueue = uniqueTaskQueue('image-commit');
  const nodeQueue = uniqueTaskQueue('node-a');
  const main = await createTestWorker(env, taskQueue, fakes.control as unknown as Activities);
  const nodeWorker = await Worker.create({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: nodeQueue, activities: fakes.node });
  const running = [main.run(), nodeWorker.run()];
  const input: ImageCommitInput = {
    commitId: randomUUID(), sessionId: randomUUID(), ownerId: randomUUID(), kind: 'convert', containerId: 'c-1', node: 'node-a', taskQueue: nodeQueue,
    imageName: 'my-custom-env:v1', registry: { name: 'local', address: '127.0.0.1:5000' }, agentTimeoutSeconds: 5,
  };
  try {
    const result = await env.client.workflow.execute<typeof imageCommitWorkflow>('imageCommitWorkflow', { workflowId: makeImageCommitWorkflowId(input.sessionId, input.commitId), taskQueue, args: [input] });
    return { result, fakes, target: convertTarget('127.0.0.1:5000', input.ownerId, 'my-custom-env:v1', input.commitId) };
  } finally {
    main.shutdown();
    nodeWorker.shutdown();
    await Promise.all(running);
  }
}

describe('imageCommitWorkflow', () => {
  it('retries a push that failed once and finishes, never with two pushes in flight; the owner\'s tag moves only once the image is pushed, registered once', async () => {
    const { result, fakes, target } = await runCommit(['transient']);
    expect(result).toMatchObject({ status: 'finished', imageId: 'sha256:made', reference: target.reference });
    expect(fakes.mostPushesInFlight()).toBe(1);
    expect(fakes.calls).toEqual([
      'phase committing', 'commit c-1', 'phase tagging', `tag ${target.staging}`, 'phase pushing', `push attempt 1 ${target.staging}`, `push attempt 2 ${target.staging}`,
      'phase registering', `tag ${target.reference}`, `push attempt 3 ${target.reference}`, `register my-custom-env:v1 ${target.reference}`, 'finish finished',
      `remove ${target.reference} ${target.staging}`,
    ]);
  });

  it('fails with RegistryPushError when the registry refuses, without retrying, and removes what it made on the node', async () => {
    const { result, fakes, target } = await runCommit(['refused']);
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ code: 'RegistryPushError', message: expect.stringContaining('unauthorized') });
    expect(fakes.calls.filter((call) => call.startsWith('push'))).toEqual([`push attempt 1 ${target.staging}`]);
    // The owner's tag was never touched: only the commit's own staging tag is removed, here and in the registry.
    expect(fakes.calls.slice(-3)).toEqual([`remove ${target.staging} ${target.reference}`, `unpublish ${target.staging}`, 'finish failed RegistryPushError']);
    expect(fakes.calls.some((call) => call.startsWith('register'))).toBe(false);
  });
});
