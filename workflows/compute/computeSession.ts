import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  ParentClosePolicy,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { ClusterKeyActivities } from '../../activities/compute/clusterKeys';
import type { ComputeControlActivities } from '../../activities/compute/control';
import type { ComputeNodeActivities } from '../../activities/compute/node';
import { abuseReason, describeAbuse, type KernelUsage } from '../../domain/compute/abuse';
import {
  abuseTerminationSignal,
  awaitStartUpdate,
  checkAndTransitSignal,
  checkAndTransitUpdate,
  completeUpdate,
  computeStateQuery,
  defaultComputeTimings,
  destroyUpdate,
  executeUpdate,
  interruptUpdate,
  kernelLogLimitBytes,
  kernelUsageUpdate,
  logsUpdate,
  modifyUpdate,
  restartUpdate,
  wakeSignal,
  type ComputeSessionInput,
  type ComputeSessionState,
  type DestroyRequest,
  type ExecuteRequest,
  type KernelLogs,
  type LogsRequest,
} from '../../domain/compute/compute';
import { downloadFilesUpdate, listFilesUpdate, uploadFilesUpdate } from '../../domain/compute/files';
import { startImageCommitUpdate } from '../../domain/compute/imageCommit';
import { computeSessionKind, imageCommitKind, makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import { directAccessUpdate, shutdownServiceUpdate, startServiceUpdate } from '../../domain/compute/services';
import { assertTransition, invalidSessionState, isFinalComputeStatus, type ComputeStatus } from '../../domain/compute/status';
import { domainFailure } from '../../domain/shared/errors';
import { sessionStartOptions } from '../../domain/shared/kind';
import { describeFailure, namedFailure } from '../../domain/shared/failures';
import { SessionName } from '../../domain/shared/searchAttributes';
import { shouldContinueAsNew } from '../shared/continueAsNew';
import { upsertStatus } from '../shared/status';

type Kernel = ComputeSessionState['kernels'][number];
type NodeActivities = ComputeNodeActivities;

// The read model and the scheduler are single PostgreSQL transactions: local activities spare
// a server round trip per status change. A database that does not answer is waited for
// (backoff up to 10 s, no attempt limit): a session must not fail because PostgreSQL restarted.
// Named failures (InsufficientResources, SessionNameTaken) are not retried.
const control = proxyLocalActivities<ComputeControlActivities & ClusterKeyActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

// Keeping the last logs at the end is best effort: a database that does not answer within a
// few attempts loses them rather than holding the session's end.
const keepLogs = proxyLocalActivities<Pick<ComputeControlActivities, 'storeComputeKernelLogs'>>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', maximumAttempts: 3 },
});

/**
 * Log answers travel through the history (the activity's result and the update's): all the
 * kernels of one answer share at most this many bytes of text, each at most kernelLogLimitBytes.
 */
const logAnswerBytes = 1024 * 1024;
/** What is kept of each kernel's log when the session ends. */
const keptLogBytes = 64 * 1024;
/** Statuses in which the session has kernels whose logs can be read. */
const withKernels: readonly ComputeStatus[] = ['RUNNING', 'RESTARTING', 'TERMINATING'];

/** How long one look at a bootstrap script waits on the node for it to end. */
const bootstrapWaitMs = 20_000;
const defaultBootstrapTimeoutSeconds = 1800;

/** Statuses in which kernels are being made: a destroy then needs `forced`. */
const creatingStatuses: readonly ComputeStatus[] = ['SCHEDULED', 'PREPARING', 'PULLING', 'PREPARED', 'CREATING'];

/**
 * One compute session, from admission to its end: wait PENDING for the start time, the
 * dependencies and room on a node; reserve nodes (SCHEDULED); prepare the cluster's key pair and
 * network (PREPARING); pull the image to every node (PULLING); create every kernel on its node
 * and wait for their bootstrap scripts (CREATING) — all or nothing; then serve restarts,
 * modifications and checks until destroyed, idle or past its lifetime (RUNNING); remove the
 * kernels (TERMINATING) and tell the sessions waiting on this one.
 *
 * Node activities go to the chosen node's own task queue; a node whose worker takes no task
 * within `agentTimeoutSeconds` is AgentNotAvailable.
 */
export async function computeSessionWorkflow(input: ComputeSessionInput): Promise<ComputeSessionState> {
  const { sessionId, ownerId } = input;
  const timings = { ...defaultComputeTimings, ...input.timings };
  const carried = input.resumed;
  const state: ComputeSessionState = carried?.state ?? {
    status: 'PENDING',
    name: input.name,
    priority: input.priority,
    idleTimeoutSeconds: input.idleTimeoutSeconds,
    kernels: input.kernels.map((kernel) => ({ ...kernel })),
  };
  let lastActivityAt = carried?.lastActivityAt ?? Date.now();
  let startedAt = carried?.startedAt;
  let network = carried?.network;
  let destroyRequest: DestroyRequest | undefined;
  let restartRequested = false;
  /** Modifications so far: each one restarts the idle timer (a new activity, perhaps a new timeout). */
  let modifications = 0;
  let woken = false;
  /** Checks asked for and checks done: an admin's update waits for the one after its own. */
  let checksAsked = 0;
  let checksDone = 0;
  let checkReason = '';
  /** Calls into the main kernel going on, and a count that moves at each one's start and end: a session running code is not idle. */
  let kernelCallsInFlight = 0;
  let kernelActivity = 0;
  /** Commits of the main kernel going on (child workflows): the session neither idles nor continues as new under one. */
  let commitsInFlight = 0;

  const ended = () => isFinalComputeStatus(state.status);
  const terminatingOrEnded = () => state.status === 'TERMINATING' || ended();

  setHandler(computeStateQuery, () => state);
  setHandler(awaitStartUpdate, async ({ timeoutMs }) => {
    await condition(() => state.status === 'RUNNING' || terminatingOrEnded(), timeoutMs);
    return state;
  });
  setHandler(
    destroyUpdate,
    async (request) => {
      if (!terminatingOrEnded() && (!destroyRequest || (request.forced && !destroyRequest.forced))) destroyRequest = request;
      await condition(terminatingOrEnded);
      return state;
    },
    {
      validator: (request) => {
        if (!request.forced && creatingStatuses.includes(state.status)) {
          throw invalidSessionState(state.status, 'its kernels are being created; destroy it with forced=true or once it runs', ['PENDING', 'RUNNING', 'RESTARTING']);
        }
      },
    },
  );
  setHandler(
    restartUpdate,
    async () => {
      restartRequested = true;
      lastActivityAt = Date.now();
      await condition(() => !restartRequested);
      return state;
    },
    { validator: () => requireStatus('RUNNING', 'restart') },
  );
  setHandler(
    modifyUpdate,
    async (request) => {
      try {
        await control.modifyComputeSession({ sessionId, change: request });
      } catch (err) {
        // The client gets the refusal by its name (SessionNameTaken), not wrapped as an activity's failure.
        throw namedFailure(err) ?? err;
      }
      if (request.name !== undefined && request.name !== state.name) {
        state.name = request.name;
        upsertSearchAttributes([{ key: SessionName, value: request.name }]);
      }
      if (request.priority !== undefined) state.priority = request.priority;
      if (request.idleTimeoutSeconds !== undefined) state.idleTimeoutSeconds = request.idleTimeoutSeconds || undefined;
      lastActivityAt = Date.now();
      modifications += 1;
      return state;
    },
    {
      validator: (_request) => {
        if (ended()) throw invalidSessionState(state.status, 'an ended session cannot be modified');
      },
    },
  );
  setHandler(checkAndTransitSignal, ({ reason }) => {
    askCheck(reason);
  });
  setHandler(checkAndTransitUpdate, async ({ reason }) => {
    // Kernels being made are looked at once they run; an ended session has nothing to look at.
    if (state.status !== 'RUNNING' && state.status !== 'PENDING') return state;
    const mine = askCheck(reason);
    await condition(() => checksDone >= mine || ended());
    return state;
  });
  setHandler(wakeSignal, () => {
    woken = true;
  });
  setHandler(
    executeUpdate,
    (request) => inMainKernel((kernel) => onKernelRunner(kernel, runnerWaitMs(request)).executeInKernel({ containerId: kernel.containerId!, ...request })),
    { validator: (_request) => requireStatus('RUNNING', 'execute') },
  );
  setHandler(interruptUpdate, async ({ runId }) => {
    // Nothing runs in a session that is not RUNNING: the run is as interrupted as it will be.
    if (state.status !== 'RUNNING') return { runId, running: false };
    return inMainKernel((kernel) => onKernelRunner(kernel).interruptKernelRun({ containerId: kernel.containerId!, runId }));
  });
  setHandler(
    completeUpdate,
    ({ code, position }) => inMainKernel((kernel) => onKernelRunner(kernel).completeInKernel({ containerId: kernel.containerId!, code, position })),
    { validator: (_request) => requireStatus('RUNNING', 'complete') },
  );
  // Files of the main kernel: the bytes are staged in PostgreSQL, the updates carry ids and small answers.
  setHandler(
    listFilesUpdate,
    ({ path, showHidden }) => inMainKernel((kernel) => onKernelFiles(kernel).listKernelFiles({ containerId: kernel.containerId!, path, showHidden })),
    { validator: (_request) => requireStatus('RUNNING', 'listing files') },
  );
  setHandler(
    uploadFilesUpdate,
    ({ transferId, path }) => inMainKernel((kernel) => onKernelFiles(kernel).uploadKernelFiles({ containerId: kernel.containerId!, sessionId, transferId, path })),
    { validator: (_request) => requireStatus('RUNNING', 'uploading files') },
  );
  setHandler(
    downloadFilesUpdate,
    (request) => inMainKernel((kernel) => onKernelFiles(kernel).downloadKernelFiles({ containerId: kernel.containerId!, sessionId, ...request })),
    { validator: (_request) => requireStatus('RUNNING', 'downloading files') },
  );

  setHandler(abuseTerminationSignal, (finding) => {
    // Only a RUNNING session is ended for abuse; one already ending keeps its own reason.
    if (state.status !== 'RUNNING' || destroyRequest) return;
    destroyRequest = { forced: false, reason: abuseReason, details: { abuse: finding } };
    setCurrentDetails(describeAbuse(finding));
  });
  setHandler(kernelUsageUpdate, () => measureKernels(), { validator: () => requireStatus('RUNNING', 'an abuse report') });

  setHandler(
    startImageCommitUpdate,
    async (request) => {
      const kernel = state.kernels.find((k) => k.role === 'main') ?? state.kernels[0]!;
      // A destroyed session cancels its commit (the parent's close), which removes what it made.
      const child = await startChild(imageCommitKind.workflowType, {
        ...sessionStartOptions(imageCommitKind, {
          key: [sessionId, request.commitId], taskQueue: workflowInfo().taskQueue, status: 'ongoing', ownerId,
          summary: `${request.kind} of session ${state.name}${request.imageName ? ` to ${request.registry!.name} as ${request.imageName}` : ''}`,
        }),
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        args: [{
          ...request, sessionId, ownerId, containerId: kernel.containerId!, node: kernel.node!, taskQueue: kernel.taskQueue!, agentTimeoutSeconds: timings.agentTimeoutSeconds,
        }],
      });
      commitsInFlight += 1;
      kernelCallsInFlight += 1;
      kernelActivity += 1;
      void child.result().catch(() => undefined).finally(() => {
        commitsInFlight -= 1;
        kernelCallsInFlight -= 1;
        kernelActivity += 1;
        lastActivityAt = Date.now();
      });
      return { workflowId: child.workflowId };
    },
    { validator: (_request) => requireStatus('RUNNING', 'commit') },
  );

  setHandler(
    logsUpdate,
    (request) => readLogs(request.kernelId ? state.kernels.filter((k) => k.kernelId === request.kernelId) : state.kernels, request, kernelLogLimitBytes),
    {
      validator: ({ kernelId }) => {
        if (!withKernels.includes(state.status)) throw invalidSessionState(state.status, 'logs are read from kernels while the session has them', [...withKernels]);
        if (kernelId !== undefined && !state.kernels.some((k) => k.kernelId === kernelId)) {
          throw domainFailure('NotFound', `session ${sessionId} has no kernel ${kernelId}`, { kernel_id: kernelId });
        }
      },
    },
  );

  // Services: an app of the image, or the sshd of direct access, in the main kernel, listened
  // for on its node. New updates: the lifecycle's commands are the same as before them.
  setHandler(
    startServiceUpdate,
    (request) => inMainKernel((kernel) => onServiceNode(kernel).startKernelService({ ...kernelAddress(kernel), ...request })),
    { validator: (_request) => requireStatus('RUNNING', 'starting a service') },
  );
  setHandler(
    shutdownServiceUpdate,
    ({ name }) => inMainKernel((kernel) => onServiceNode(kernel).stopKernelService({ sessionId, containerId: kernel.containerId!, name })),
    { validator: (_request) => requireStatus('RUNNING', 'stopping a service') },
  );
  setHandler(
    directAccessUpdate,
    () => inMainKernel(async (kernel) => {
      // The cluster's key pair when there is one, else one made now for this session (same row, same sealing).
      const { keyId } = await control.ensureClusterKeyPair({ sessionId, ownerId });
      return onServiceNode(kernel).openDirectAccess({ ...kernelAddress(kernel), keyId, hostname: kernel.hostname });
    }),
    { validator: () => requireStatus('RUNNING', 'direct access') },
  );

  if (state.status === 'PENDING' && (await waitForRoom())) await createKernels();
  if (state.status === 'RUNNING') await serve();
  if (state.status === 'TERMINATING') await terminate(destroyRequest?.reason ?? state.reason ?? 'destroyed');
  await wakeWaitingSessions();
  await condition(allHandlersFinished);
  return state;

  /**
   * PENDING: the start time, then the dependencies (all TERMINATED; one that failed cancels
   * this one), then room in the scaling group. Woken by a session that ends, or every
   * `pendingRetrySeconds`; `max_wait` bounds the wait. Returns whether the session is SCHEDULED.
   */
  async function waitForRoom(): Promise<boolean> {
    const pastDeadline = () => input.pendingDeadline !== undefined && Date.now() >= input.pendingDeadline;
    const stopWaiting = () => destroyRequest !== undefined || pastDeadline() || checksAsked > checksDone;
    const pause = async (ms: number) => {
      woken = false;
      const untilDeadline = input.pendingDeadline === undefined ? ms : Math.max(0, input.pendingDeadline - Date.now());
      await condition(() => woken || stopWaiting(), Math.min(ms, untilDeadline));
      checksDone = checksAsked;
    };
    if (input.startsAt !== undefined && input.startsAt > Date.now() && !carried) await pause(input.startsAt - Date.now());
    for (;;) {
      if (destroyRequest) return !(await transit('CANCELLED', destroyRequest.reason ?? 'destroyed while PENDING'));
      if (pastDeadline()) return !(await transit('CANCELLED', 'still PENDING when max_wait ran out'));
      if (input.startsAt !== undefined && input.startsAt > Date.now()) {
        await pause(input.startsAt - Date.now());
        continue;
      }
      const dependencies = await control.computeDependencyOutcome({ sessionId });
      if (typeof dependencies === 'object') return !(await transit('CANCELLED', `dependency ${dependencies.failed} ended ${dependencies.status}`));
      if (dependencies === 'ready') {
        let placement: Awaited<ReturnType<ComputeControlActivities['scheduleComputeSession']>>;
        try {
          placement = await control.scheduleComputeSession({ sessionId });
        } catch (err) {
          if (namedFailure(err)?.type !== 'InsufficientResources') throw err;
          return !(await transit('ERROR', reasonOf(err)));
        }
        if ('placed' in placement) {
          for (const placed of placement.placed) Object.assign(kernelByHostname(placed.hostname), { node: placed.node, taskQueue: placed.taskQueue });
          await transit('SCHEDULED', `placed on ${[...new Set(placement.placed.map((k) => k.node))].join(', ')}`);
          return true;
        }
      }
      if (shouldContinueAsNew(timings.historyLimit) && allHandlersFinished()) await carryOn();
      await pause(timings.pendingRetrySeconds * 1000);
    }
  }

  /**
   * SCHEDULED → PREPARING → PULLING → PREPARED → CREATING → RUNNING, all or nothing: a kernel
   * that fails (or a forced destroy) removes every kernel made so far, in a scope nothing can
   * cancel, and the session ends ERROR naming the kernel and the cause (or TERMINATED).
   */
  async function createKernels(): Promise<void> {
    const creation = new CancellationScope();
    // A forced destroy cancels the creation; the compensation below then removes what was made.
    void condition(() => destroyRequest !== undefined).then(() => creation.cancel());
    try {
      await creation.run(async () => {
        await transit('PREPARING');
        const cluster = state.kernels.length > 1;
        const keyId = cluster ? (await control.ensureClusterKeyPair({ sessionId, ownerId })).keyId : undefined;
        if (cluster && input.clusterMode === 'single-node') network = (await onNode(state.kernels[0]!).ensureClusterNetwork({ sessionId })).network;
        await transit('PULLING');
        await settleAll(distinctNodes().map((kernel) => onNode(kernel, 'pull').pullKernelImage({ reference: input.imageReference }).catch((err: unknown) => {
          throw kernelFailure(kernel, err, `pulling ${input.image} to node ${kernel.node}`);
        })));
        await transit('PREPARED');
        await transit('CREATING');
        const hosts = state.kernels.map((kernel) => kernel.hostname);
        await settleAll(state.kernels.map(async (kernel) => {
          try {
            const { containerId } = await onNode(kernel).createKernel({
              sessionId, ownerId, kernelId: kernel.kernelId, hostname: kernel.hostname, role: kernel.role, idx: kernel.idx,
              imageReference: input.imageReference, resources: input.resources, env: input.env, secretId: input.secretId,
              vfolders: input.vfolders, network: input.clusterMode === 'single-node' ? network : undefined, clusterHosts: hosts,
              clusterKeyId: keyId, bootstrapScript: input.bootstrapScript,
            });
            kernel.containerId = containerId;
            await control.setComputeKernelContainer({ kernelId: kernel.kernelId, containerId });
            await awaitBootstrap(kernel);
          } catch (err) {
            throw kernelFailure(kernel, err, 'creating it');
          }
        }));
      });
      startedAt = Date.now();
      lastActivityAt = startedAt;
      await transit('RUNNING');
    } catch (err) {
      await CancellationScope.nonCancellable(async () => {
        await keepLastLogs();
        const removal = await removeKernels();
        if (destroyRequest && isCancellation(err)) {
          const reason = destroyRequest.reason ?? 'destroyed (forced) while being created';
          await transit('TERMINATING', reason);
          await transit(removal ?? 'TERMINATED', removal ? `a node did not answer to remove its kernels (${reason})` : reason);
        } else {
          await transit('ERROR', reasonOf(err));
        }
      });
    }
  }

  /**
   * The bootstrap script's exit code decides: 0 and the kernel is up; otherwise, or when it
   * runs past its timeout, the session fails. Each look waits on the node (heartbeating) up to
   * 20 s for the script to end: a dev server's timers tick by the second, and a wait in the
   * activity answers within 50 ms of the end.
   */
  async function awaitBootstrap(kernel: Kernel): Promise<void> {
    const timeoutSeconds = input.bootstrapTimeoutSeconds ?? defaultBootstrapTimeoutSeconds;
    // Determinism: the deadline is workflow time, fixed when the wait begins.
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw domainFailure('BootstrapFailed', `the bootstrap script did not finish within ${timeoutSeconds} s`, { timeout_seconds: timeoutSeconds });
      const bootstrap = await onNode(kernel, 'wait').kernelBootstrapState({ containerId: kernel.containerId!, waitMs: Math.min(bootstrapWaitMs, remaining) });
      if (bootstrap.done) {
        if (bootstrap.exitCode === 0) return;
        throw domainFailure('BootstrapFailed', `the bootstrap script exited with ${bootstrap.exitCode}`, { exit_code: bootstrap.exitCode });
      }
      if (!bootstrap.running) throw domainFailure('KernelFailed', 'its container stopped before the bootstrap script finished');
    }
  }

  /**
   * RUNNING: restarts, checks and modifications until a destroy, the idle timeout (any action
   * on the session counts as activity) or the end of its lifetime. Both timeouts are durable
   * timers derived from workflow time.
   */
  async function serve(): Promise<void> {
    for (;;) {
      // Determinism: sessions that never call their kernel see the same timers as before kernel calls existed.
      const idleEnds = state.idleTimeoutSeconds && kernelCallsInFlight === 0 ? lastActivityAt + state.idleTimeoutSeconds * 1000 : Infinity;
      const seenKernelActivity = kernelActivity;
      const seenModifications = modifications;
      const lifeEnds = input.maxLifetimeSeconds && startedAt !== undefined ? startedAt + input.maxLifetimeSeconds * 1000 : Infinity;
      const next = Math.min(idleEnds, lifeEnds);
      // Determinism: continue as new only once every handler has answered (see shouldContinueAsNew).
      const carryOnNow = () => shouldContinueAsNew(timings.historyLimit) && allHandlersFinished() && commitsInFlight === 0;
      const asked = () => destroyRequest !== undefined || restartRequested || checksAsked > checksDone || carryOnNow() || kernelActivity !== seenKernelActivity || modifications !== seenModifications;
      if (next === Infinity) await condition(asked);
      else await condition(asked, Math.max(0, next - Date.now()));

      if (destroyRequest) return transitTo('TERMINATING', destroyRequest.reason ?? 'destroyed', destroyRequest.details);
      if (restartRequested) {
        await restart();
        if (ended()) return;
        continue;
      }
      if (checksAsked > checksDone) {
        const asking = checksAsked;
        await check();
        checksDone = asking;
        if (ended()) return;
        continue;
      }
      // A kernel call began or ended, or the session was modified: the timers start again from now.
      if (kernelActivity !== seenKernelActivity || modifications !== seenModifications) continue;
      if (Date.now() >= lifeEnds) return transitTo('TERMINATING', `max lifetime of ${input.maxLifetimeSeconds} s reached`);
      if (Date.now() >= idleEnds) return transitTo('TERMINATING', `idle for ${state.idleTimeoutSeconds} s`);
      if (carryOnNow()) await carryOn();
    }
  }

  /** RUNNING → RESTARTING → RUNNING: every kernel's container restarted in place (vfolders and files kept, bootstrap not run again). */
  async function restart(): Promise<void> {
    await transit('RESTARTING', 'restart requested');
    try {
      await settleAll(state.kernels.map((kernel) => onNode(kernel).restartKernel({ containerId: kernel.containerId! }).catch((err: unknown) => {
        throw kernelFailure(kernel, err, 'restarting it');
      })));
      await transit('RUNNING', 'restarted');
    } catch (err) {
      await CancellationScope.nonCancellable(async () => {
        await keepLastLogs();
        await removeKernels();
        await transit('ERROR', reasonOf(err));
      });
    } finally {
      restartRequested = false;
    }
  }

  /**
   * Check and transit: every kernel's container must still run on a node that answers. One
   * gone (removed behind the platform's back, exited) or a dead node ends the session ERROR
   * with the reason, after removing what is left.
   */
  async function check(): Promise<void> {
    let problem: string | undefined;
    for (const kernel of distinctNodes()) {
      const ids = state.kernels.filter((k) => k.node === kernel.node).map((k) => k.containerId!);
      try {
        const states = await onNode(kernel).inspectKernels({ containerIds: ids });
        const gone = state.kernels.find((k) => k.node === kernel.node && states[k.containerId!] !== 'running');
        if (gone) problem = `kernel ${gone.hostname}'s container is ${states[gone.containerId!] ?? 'missing'} (check: ${checkReason})`;
      } catch (err) {
        problem = reasonOf(kernelFailure(kernel, err, 'checking its container'));
      }
      if (problem) break;
    }
    if (!problem) return;
    await CancellationScope.nonCancellable(async () => {
      await keepLastLogs();
      await removeKernels();
      await transit('ERROR', problem);
    });
  }

  /** TERMINATING → TERMINATED: kernels and the cluster network removed on every node. */
  async function terminate(reason: string): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      await keepLastLogs();
      const removal = await removeKernels();
      await transit(removal ?? 'TERMINATED', removal ? `a node did not answer to remove the kernels (${reason})` : reason);
    });
  }

  /**
   * Removes every kernel of the session on every node it was placed on (by the session's label,
   * so a container whose create never answered goes too) and the cluster network. Returns
   * ERROR when a node is gone and its kernels could not be removed.
   */
  async function removeKernels(): Promise<'ERROR' | undefined> {
    const outcomes = await Promise.allSettled(distinctNodes().map(async (kernel) => {
      await onNode(kernel).removeSessionKernels({ sessionId });
      if (network && kernel.node === state.kernels[0]!.node) await onNode(kernel).removeClusterNetwork({ sessionId });
    }));
    return outcomes.some((outcome) => outcome.status === 'rejected') ? 'ERROR' : undefined;
  }

  /**
   * The container logs of the given kernels, read on their nodes (one call per node), labelled
   * by kernel. A kernel without a container (not made yet, or gone) has no lines. The kernels
   * share logAnswerBytes, each at most `perKernelBytes`; the newest lines are kept.
   */
  async function readLogs(kernels: Kernel[], { since, until }: LogsRequest, perKernelBytes: number): Promise<KernelLogs[]> {
    const tailBytes = Math.min(perKernelBytes, Math.floor(logAnswerBytes / Math.max(1, kernels.length)));
    const made = kernels.filter((k) => k.containerId !== undefined && k.taskQueue !== undefined);
    const nodes = [...new Set(made.map((k) => k.node!))];
    const read = await Promise.all(nodes.map(async (node) => {
      const onThisNode = made.filter((k) => k.node === node);
      try {
        return await onNode(onThisNode[0]!).kernelLogs({ containerIds: onThisNode.map((k) => k.containerId!), since, until, tailBytes });
      } catch (err) {
        throw kernelFailure(onThisNode[0]!, err, 'reading its logs');
      }
    }));
    const byContainer = Object.assign({}, ...read) as Awaited<ReturnType<NodeActivities['kernelLogs']>>;
    return kernels.map((k) => {
      const logs = k.containerId ? byContainer[k.containerId] : undefined;
      return { kernelId: k.kernelId, hostname: k.hostname, lines: logs?.lines ?? [], truncated: logs?.truncated ?? false };
    });
  }

  /** Each kernel's resource use now (one call per node, about a second); a kernel not running cannot be measured: KernelFailed. */
  async function measureKernels(): Promise<{ kernelId: string; hostname: string; node: string; usage: KernelUsage }[]> {
    const read = await Promise.all(distinctNodes().map(async (first) => {
      const onThisNode = state.kernels.filter((k) => k.node === first.node && k.containerId !== undefined);
      try {
        return await onNode(first).measureKernels({ containerIds: onThisNode.map((k) => k.containerId!) });
      } catch (err) {
        throw kernelFailure(first, err, 'measuring its resource use');
      }
    }));
    const byContainer = Object.assign({}, ...read) as Record<string, KernelUsage | null>;
    return state.kernels.map((k) => {
      const usage = k.containerId ? byContainer[k.containerId] : undefined;
      if (!usage) throw domainFailure('KernelFailed', `kernel ${k.hostname} on node ${k.node} is not running: its use cannot be measured`, { kernel: k.hostname, node: k.node });
      return { kernelId: k.kernelId, hostname: k.hostname, node: k.node!, usage };
    });
  }

  /**
   * Before the kernels are removed: their last logs into PostgreSQL, for reading once the
   * session has ended. Best effort: a node or a database that fails loses them, never the end.
   */
  async function keepLastLogs(): Promise<void> {
    const made = state.kernels.filter((k) => k.containerId !== undefined);
    if (made.length === 0) return;
    const read = await Promise.allSettled(made.map((k) => readLogs([k], {}, keptLogBytes)));
    const logs = read.flatMap((outcome) => (outcome.status === 'fulfilled' ? outcome.value : []));
    const failed = read.filter((outcome) => outcome.status === 'rejected');
    if (failed.length > 0) log.warn('some kernels\' last logs could not be read', { sessionId, failed: failed.length, reason: reasonOf((failed[0] as PromiseRejectedResult).reason) });
    try {
      await keepLogs.storeComputeKernelLogs({ sessionId, logs });
    } catch (err) {
      log.warn('the kernels\' last logs could not be kept', { sessionId, reason: reasonOf(err) });
    }
  }

  /** The sessions this one's end may let go on: its dependents and the PENDING ones of its scaling group. */
  async function wakeWaitingSessions(): Promise<void> {
    const waiting = await control.computeSessionsToWake({ sessionId });
    await Promise.all(waiting.map((id) => getExternalWorkflowHandle(makeComputeSessionWorkflowId(id)).signal(wakeSignal).catch(() => undefined)));
  }

  /** Every status change: allowed by the map, in the read model's history, in the Web UI. Returns whether the session has ended. */
  async function transit(to: ComputeStatus, reason?: string, details?: Record<string, unknown>): Promise<boolean> {
    assertTransition(state.status, to);
    const from = state.status;
    await control.recordComputeTransition({ sessionId, from, to, reason, at: Date.now(), ...(details && { details }) });
    state.status = to;
    state.reason = reason;
    upsertStatus(computeSessionKind, to);
    return ended();
  }

  async function transitTo(to: ComputeStatus, reason: string, details?: Record<string, unknown>): Promise<void> {
    await transit(to, reason, details);
  }

  function askCheck(reason: string): number {
    checkReason = reason;
    checksAsked += 1;
    return checksAsked;
  }

  /**
   * A call into the main kernel (execute, interrupt, complete): activity on the session while
   * it goes on and when it ends. The client gets a kernel's refusal by its name; a node that
   * takes no task is AgentNotAvailable, anything else KernelFailed.
   */
  async function inMainKernel<T>(call: (kernel: Kernel) => Promise<T>): Promise<T> {
    kernelCallsInFlight += 1;
    kernelActivity += 1;
    lastActivityAt = Date.now();
    const kernel = state.kernels.find((k) => k.role === 'main') ?? state.kernels[0]!;
    try {
      return await call(kernel);
    } catch (err) {
      const named = namedFailure(err);
      if (named) throw named;
      if (agentUnavailable(err)) throw domainFailure('AgentNotAvailable', `node ${kernel.node} took no task within ${timings.agentTimeoutSeconds} s`, { kernel: kernel.hostname, node: kernel.node });
      const { type, message } = describeFailure(err);
      throw domainFailure('KernelFailed', `kernel ${kernel.hostname} on node ${kernel.node}: ${type}: ${message}`, { kernel: kernel.hostname, node: kernel.node });
    } finally {
      kernelCallsInFlight -= 1;
      kernelActivity += 1;
      lastActivityAt = Date.now();
    }
  }

  function requireStatus(status: ComputeStatus, action: string): void {
    if (state.status !== status) throw invalidSessionState(state.status, `${action} needs a ${status} session`, [status]);
  }

  function kernelByHostname(hostname: string): Kernel {
    return state.kernels.find((kernel) => kernel.hostname === hostname)!;
  }

  /** One kernel per node the session uses, to address that node's queue. */
  function distinctNodes(): Kernel[] {
    const seen = new Set<string>();
    return state.kernels.filter((kernel) => kernel.node !== undefined && !seen.has(kernel.node) && Boolean(seen.add(kernel.node)));
  }

  // Docker calls on a node: seconds, unless the engine stalls; retried a few times (a create
  // finds its first attempt's container by name). A cancelled one is waited for, so that a
  // compensation never runs before a create it must undo has finished. A pull moves hundreds
  // of megabytes from the registry: minutes at worst. A look at a bootstrap waits up to 20 s,
  // heartbeating, so a cancel reaches it at once. A node that takes no task within
  // agentTimeoutSeconds is not retried: AgentNotAvailable.
  function onNode(kernel: Kernel, work: 'docker' | 'pull' | 'wait' = 'docker') {
    return proxyActivities<NodeActivities>({
      taskQueue: kernel.taskQueue!,
      scheduleToStartTimeout: `${timings.agentTimeoutSeconds}s`,
      startToCloseTimeout: work === 'pull' ? '15m' : '2m',
      ...(work === 'wait' ? { heartbeatTimeout: '10s' } : { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED }),
      retry: { initialInterval: work === 'pull' ? '1s' : '500ms', maximumAttempts: work === 'pull' ? 3 : 5, nonRetryableErrorTypes: ['ImageNotFound'] },
    });
  }

  // A run takes up to its timeout, then the runner interrupts it (again each second for a
  // minute); the activity heartbeats every 2 s, so a node worker that dies is noticed in 20 s
  // and the retry joins the same run (the runner knows it by id). Interrupt and complete answer
  // within seconds. A kernel's refusals (busy, timeout, gone) are named and not retried.
  function onKernelRunner(kernel: Kernel, runMs?: number) {
    return proxyActivities<NodeActivities>({
      taskQueue: kernel.taskQueue!,
      scheduleToStartTimeout: `${timings.agentTimeoutSeconds}s`,
      startToCloseTimeout: runMs === undefined ? '1m' : runMs + 120_000,
      heartbeatTimeout: '20s',
      retry: { initialInterval: '500ms', maximumAttempts: 3 },
    });
  }

  // Files move between PostgreSQL and the kernel: a listing in seconds, hundreds of megabytes in
  // minutes. The activity heartbeats every 2 s, so a node worker that dies is noticed in 20 s and
  // the retry starts over (each file activity may run again). The kernel's refusals are named and
  // not retried.
  function onKernelFiles(kernel: Kernel) {
    return proxyActivities<NodeActivities>({
      taskQueue: kernel.taskQueue!,
      scheduleToStartTimeout: `${timings.agentTimeoutSeconds}s`,
      startToCloseTimeout: '10m',
      heartbeatTimeout: '20s',
      retry: { initialInterval: '500ms', maximumAttempts: 3 },
    });
  }

  // A service's start waits up to 60 s on the node for the app to answer, heartbeating (a node
  // worker that dies is noticed in 20 s and the retry finds the service's row); stop and direct
  // access answer within seconds. Named refusals (ServiceStartFailed, KernelFailed) are final.
  function onServiceNode(kernel: Kernel) {
    return proxyActivities<NodeActivities>({
      taskQueue: kernel.taskQueue!,
      scheduleToStartTimeout: `${timings.agentTimeoutSeconds}s`,
      startToCloseTimeout: '2m',
      heartbeatTimeout: '20s',
      retry: { initialInterval: '500ms', maximumAttempts: 3 },
    });
  }

  function kernelAddress(kernel: Kernel) {
    return { sessionId, kernelId: kernel.kernelId, containerId: kernel.containerId!, node: kernel.node! };
  }

  /** A kernel's failure as the session's reason: which kernel, on which node, doing what, and why. */
  function kernelFailure(kernel: Kernel, err: unknown, doing: string) {
    if (isCancellation(err)) return err;
    if (agentUnavailable(err)) {
      return domainFailure('AgentNotAvailable', `kernel ${kernel.hostname}: node ${kernel.node} took no task within ${timings.agentTimeoutSeconds} s while ${doing}`, { kernel: kernel.hostname, node: kernel.node });
    }
    const { type, message } = describeFailure(namedFailure(err) ?? err);
    return domainFailure(type === 'AgentNotAvailable' || type === 'ImageNotFound' || type === 'BootstrapFailed' ? type : 'KernelFailed', `kernel ${kernel.hostname} on node ${kernel.node}, ${doing}: ${type}: ${message}`, { kernel: kernel.hostname, node: kernel.node });
  }

  async function carryOn(): Promise<never> {
    return continueAsNew<typeof computeSessionWorkflow>({ ...input, resumed: { state, lastActivityAt, startedAt, network } });
  }
}

/** How long a run request may wait in the kernel: its wait, else the run's timeout (start) or up to an hour (input, continue: the run's own timeout bounds it). */
function runnerWaitMs({ mode, waitMs, timeoutMs }: ExecuteRequest): number {
  return waitMs ?? (mode === 'input' || mode === 'continue' ? 3_600_000 : timeoutMs);
}

/** Every promise settled before the first failure is thrown: compensation must know every container a create made. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const outcomes = await Promise.allSettled(promises);
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}

function agentUnavailable(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

function reasonOf(err: unknown): string {
  const { type, message } = describeFailure(namedFailure(err) ?? err);
  return `${type}: ${message}`;
}
