import {
  ActivityCancellationType,
  CancellationScope,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type { ImageCommitControlActivities } from '../../activities/compute/imageCommitControl';
import type { ImageCommitNodeActivities } from '../../activities/compute/imageCommit';
import {
  convertTarget,
  emptyProgress,
  stagingTag,
  imageCommitProgressQuery,
  type CommitPhase,
  type CommitProgress,
  type ImageCommitInput,
  type ImageCommitResult,
} from '../../domain/compute/imageCommit';
import { imageCommitKind } from '../../domain/compute/kind';
import { describeFailure, namedFailure } from '../../domain/shared/failures';
import { upsertStatus } from '../shared/status';

// The commit row: one statement each, waited for through a database restart.
const control = proxyLocalActivities<ImageCommitControlActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

/**
 * One commit of a session's main kernel, a child of the session's workflow (which a destroy
 * cancels): `docker commit` on the kernel's node; for a convert then a tag, a push to the
 * registry and the image registered as the owner's. One activity at a time, so two pushes of
 * the same commit never overlap; a failed push is retried (the registry keeps the layers it
 * has). Failure or cancel removes what the commit made on the node, in a scope nothing cancels.
 * Progress: the query, the commit row, and the workflow's current details in the Web UI.
 */
export async function imageCommitWorkflow(input: ImageCommitInput): Promise<ImageCommitResult> {
  const { commitId, kind } = input;
  let progress: CommitProgress = emptyProgress();
  setHandler(imageCommitProgressQuery, () => progress);
  const target = kind === 'convert' ? convertTarget(input.registry!.address, input.ownerId, input.imageName!, commitId) : undefined;
  /** Whether the owner's tag has moved to this commit's image: from then on the convert finishes, whatever is asked. */
  let promoted = false;

  const node = proxyActivities<ImageCommitNodeActivities>({
    taskQueue: input.taskQueue,
    scheduleToStartTimeout: `${input.agentTimeoutSeconds}s`,
    startToCloseTimeout: '10m',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', maximumAttempts: 5 },
  });
  // A push of gigabytes takes as long as it moves: the heartbeat decides, and a push that stops
  // moving (a dead node or engine) misses it and is tried again. Temporal wants some bound on an
  // attempt: a day, which no push that moves reaches (10 GB at 1 MB/s is under three hours).
  const push = proxyActivities<ImageCommitNodeActivities>({
    taskQueue: input.taskQueue,
    scheduleToStartTimeout: `${input.agentTimeoutSeconds}s`,
    startToCloseTimeout: '24h',
    heartbeatTimeout: '30s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '2s', maximumAttempts: 5, nonRetryableErrorTypes: ['RegistryPushError'] },
  });

  const enter = async (phase: CommitPhase) => {
    progress = { ...progress, phase };
    setCurrentDetails(`${kind} ${commitId}: ${phase}`);
    await control.recordImageCommitProgress({ commitId, progress });
  };

  try {
    await enter('committing');
    const { imageId } = await node.commitKernel({ commitId, containerId: input.containerId });
    progress = { ...progress, imageId };
    if (target) {
      await enter('tagging');
      await node.tagCommitImage({ commitId, repo: target.repo, tag: stagingTag(commitId) });
      await enter('pushing');
      progress = await push.pushCommitImage({ commitId, reference: target.staging, registry: input.registry!, progress });
    }
    // The image is whole in the registry: the owner's tag moves to it (its layers are there, so
    // the second push sends a manifest), it is registered, and the commit finishes, all in a
    // scope a cancel does not reach — a cancel from here on is too late, not half done.
    await CancellationScope.nonCancellable(async () => {
      if (target) {
        await enter('registering');
        promoted = true;
        await node.tagCommitImage({ commitId, repo: target.repo, tag: target.tag });
        await push.pushCommitImage({ commitId, reference: target.reference, registry: input.registry!, progress });
        await control.registerCommitImage({ ownerId: input.ownerId, sessionId: input.sessionId, name: input.imageName!, reference: target.reference, registry: input.registry!.name });
      }
      progress = { ...progress, phase: 'done' };
      setCurrentDetails(`${kind} ${commitId}: finished`);
      await control.finishImageCommit({ commitId, status: 'finished', progress });
    });
    upsertStatus(imageCommitKind, 'finished');
    // The registry holds it now and sessions on any node pull it from there: the local tags go,
    // after the answer (removing a large image takes seconds the owner need not wait for).
    // Best effort: the convert has finished whatever becomes of them (a node's sweep of old images is not ours).
    if (target) await node.removeCommitImages({ commitId, references: [target.reference, target.staging] }).catch((err: unknown) => log.warn('the commit\'s local tags stay', { commitId, reason: describeFailure(err).message }));
    return { status: 'finished', imageId, reference: target?.reference };
  } catch (err) {
    // A cancel the activity answered with its own failure is still the cancel asked for.
    const cancelled = isCancellation(err) || CancellationScope.current().consideredCancelled;
    const error = cancelled ? { code: 'Cancelled', message: 'the commit was cancelled' } : failureOf(err, input, progress.phase);
    await CancellationScope.nonCancellable(async () => {
      // Best effort, each: the row must end whatever becomes of them (a node gone for good).
      const bestEffort = (what: string) => (err: unknown) => log.warn(`${what} stays`, { commitId, reason: describeFailure(err).message });
      await node.removeCommitImages({ commitId, references: target ? [target.staging, ...(promoted ? [] : [target.reference])] : [] }).catch(bestEffort('what the commit made on the node'));
      // The staging push may have finished before its cancel reached it: its manifest goes (the
      // tag is this commit's own; the owner's tag was never moved unless promoted).
      if (target && !promoted && progress.phase === 'pushing') {
        await node.unpublishCommitImage({ commitId, reference: target.staging, registry: input.registry! }).catch(bestEffort('what the commit pushed to the registry'));
      }
      await control.finishImageCommit({ commitId, status: cancelled ? 'cancelled' : 'failed', progress, error });
    });
    setCurrentDetails(`${kind} ${commitId}: ${cancelled ? 'cancelled' : `failed: ${error.message}`}`);
    upsertStatus(imageCommitKind, cancelled ? 'cancelled' : 'failed');
    return { status: cancelled ? 'cancelled' : 'failed', error };
  }
}

/**
 * The commit's failure by its name: a named one as it is (RegistryPushError, ContainerLost); a
 * push that failed every attempt is the registry's RegistryPushError with the engine's reason;
 * anything else KernelFailed naming the node and the phase.
 */
function failureOf(err: unknown, input: ImageCommitInput, phase: CommitPhase): { code: string; message: string } {
  const named = namedFailure(err);
  if (named) return { code: named.type!, message: named.message };
  const { type, message } = describeFailure(err);
  if (phase === 'pushing') return { code: 'RegistryPushError', message: `registry ${input.registry!.name} (${input.registry!.address}): ${type}: ${message}` };
  return { code: 'KernelFailed', message: `${phase} on node ${input.node}: ${type}: ${message}` };
}
