import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  TemporalFailure,
  uuid4,
} from '@temporalio/workflow';
import type { SandboxActivities } from '../../activities/sandbox/sandbox';
import { domainFailure, isErrorCode } from '../../domain/shared/errors';
import {
  cleanupExpiredSignal,
  currentSandboxQuery,
  describeDeath,
  ensureSandboxUpdate,
  execInSandboxUpdate,
  isExpired,
  sandboxContainerName,
  stopSandboxUpdate,
  type ContainerDeath,
  type SandboxEventName,
  type SandboxRecord,
  type SandboxRequester,
  type SandboxWorkflowInput,
  type StopReason,
} from '../../domain/sandbox/sandbox';
import { sandboxKind } from '../../domain/sandbox/kind';
import { describeFailure, namedFailure } from '../../domain/shared/failures';
import { KeyedSerialQueue } from '../../domain/shared/keyedSerialQueue';
import { shouldContinueAsNew } from '../shared/continueAsNew';
import { upsertFinalStatus, upsertStatus } from '../shared/status';

// Creating and starting a container takes about a second (several under a burst of creates).
// The activity heartbeats every second: a dead worker's attempt times out after 4 s without
// one, and the retry finds that attempt's container by name. A missing image will not appear
// by retrying.
const containers = proxyActivities<SandboxActivities>({
  startToCloseTimeout: '30s',
  heartbeatTimeout: '4s',
  retry: { initialInterval: '500ms', maximumAttempts: 5, nonRetryableErrorTypes: ['ImageNotFound', 'SandboxQuotaExceeded'] },
});
// A stop is retried a little, then reported: the sweep logs the failure and tries again on
// its next run rather than blocking on one stuck container.
const stopper = proxyActivities<SandboxActivities>({
  startToCloseTimeout: '30s',
  heartbeatTimeout: '4s',
  retry: { initialInterval: '500ms', maximumAttempts: 3 },
});
// The command's own timeout (at most 120 s) bounds an exec; never retried, because running
// user code twice is not idempotent. An exec on a worker that dies fails after 10 s without
// a heartbeat, not 150 s (a generous margin: a spurious timeout here would fail a user's exec).
const executor = proxyActivities<SandboxActivities>({ startToCloseTimeout: '150s', heartbeatTimeout: '10s', retry: { maximumAttempts: 1 } });
// Read-model writes are single quick statements: local activities spare a server round trip.
const readModel = proxyLocalActivities<SandboxActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 5 } });
// A container's liveness is one Docker inspect, on every reuse: asked once more at most, so an
// engine that does not answer delays an ensure by seconds, not by a long backoff.
const prober = proxyLocalActivities<SandboxActivities>({ startToCloseTimeout: '5s', retry: { maximumAttempts: 2 } });

// Determinism: behind these, running workflows whose histories predate them replay unchanged.
/** An ensure checks that the container it would reuse still runs; a dead one is retired, also by exec. */
const retireDeadContainersPatch = 'sandbox-retire-dead-containers';
/** A failed create removes what it made and fails by name. */
const discardFailedCreatePatch = 'sandbox-discard-failed-create';

/** Past this many events a long-lived chat continues as new, carrying only its sandbox. */
const defaultHistoryLimit = 2000;

/**
 * One chat's sandbox, for the chat's whole life. Ensures arrive as updates (update-with-start
 * from the api) and run one at a time, so concurrent ensures create exactly one container.
 * A TTL timer marks the sandbox EXPIRED; the cleanup sweep (or the next ensure, which replaces
 * it) stops its container. With no live sandbox and nothing in flight, the workflow ends; the
 * next ensure starts a new one under the same id.
 */
export async function sandboxWorkflow(input: SandboxWorkflowInput): Promise<SandboxRecord | null> {
  const { chatId, ownerId, ttlMs } = input;
  const historyLimit = input.historyLimit ?? defaultHistoryLimit;
  let current: SandboxRecord | null = input.current ?? null;
  // Ensures, stops and cleanups run one at a time, in arrival order: they never interleave.
  const queue = new KeyedSerialQueue();
  const serially = <T>(task: () => Promise<T>): Promise<T> => queue.run(chatId, task);

  const setCurrent = (sandbox: SandboxRecord) => {
    current = sandbox;
    upsertStatus(sandboxKind, sandbox.status);
    setCurrentDetails(`Sandbox ${sandbox.sessionId}: **${sandbox.status}**, container ${sandbox.containerName}, expires ${sandbox.expiresAt}`);
  };
  const record = (event: SandboxEventName, sandbox: SandboxRecord, error?: string) =>
    readModel.recordSandboxEvent({ event, chatId, sessionId: sandbox.sessionId, containerId: sandbox.containerId, error });
  const stop = async (sandbox: SandboxRecord, reason: StopReason) => {
    await stopper.stopSandboxContainer({ sessionId: sandbox.sessionId, containerName: sandbox.containerName, reason });
    setCurrent({ ...sandbox, status: 'STOPPED' });
  };
  // An engine that does not answer is not a dead container: reuse it, as before probes; an exec will tell.
  const probe = (sandbox: SandboxRecord) =>
    prober.probeSandboxContainer({ containerName: sandbox.containerName }).catch((err: unknown) => {
      // A local activity's failure arrives as what it threw (or a timeout), not wrapped in an ActivityFailure.
      if (err instanceof TemporalFailure && !isCancellation(err)) return undefined;
      throw err;
    });
  // A dead container is not restarted: its files are gone, so the chat gets a new sandbox, knowingly.
  const retireLost = async (sandbox: SandboxRecord, death: ContainerDeath) => {
    await stop(sandbox, 'lost');
    await record('sandbox_lost', sandbox, describeDeath(death));
  };
  // Only the chat's owner (or an admin the api vouched for) reaches this sandbox; rejected
  // in the validator, so a stranger's request leaves no trace in history.
  const ownerOnly = (request: SandboxRequester) => {
    if (request.ownerId !== ownerId) throw domainFailure('NotFound', `no sandbox for chat ${chatId}`);
  };

  setHandler(currentSandboxQuery, () => current);

  setHandler(
    ensureSandboxUpdate,
    (request) =>
      serially(async () => {
        const now = Date.now(); // workflow time: deterministic on replay
        const previous = current;
        if (previous?.status === 'RUNNING' && !isExpired(previous, now)) {
          const death = patched(retireDeadContainersPatch) ? await probe(previous) : undefined;
          if (!death) {
            await record('sandbox_reused', previous);
            return { sandbox: previous, reused: true };
          }
          await retireLost(previous, death);
        } else if (previous && previous.status !== 'STOPPED') {
          await stop(previous, 'replaced');
          await record('sandbox_replaced', previous);
        }
        // The api's current configuration decides a new sandbox's lifetime and the owner's limit.
        const sandbox = await create(now, request.ttlMs ?? ttlMs, request.maxPerUser);
        return { sandbox, reused: false };
      }),
    { validator: ownerOnly },
  );

  setHandler(
    stopSandboxUpdate,
    () =>
      serially(async () => {
        const previous = current;
        if (!previous || previous.status === 'STOPPED') return null;
        await stop(previous, 'stopped');
        await record('sandbox_stopped', previous);
        return current;
      }),
    { validator: ownerOnly },
  );

  setHandler(
    execInSandboxUpdate,
    async ({ command, stdin, timeoutMs }) => {
      const sandbox = current;
      if (!sandbox || sandbox.status !== 'RUNNING' || isExpired(sandbox, Date.now())) {
        throw domainFailure('InvalidSessionState', `chat ${chatId} has no active sandbox; ensure one first`, { state: sandbox?.status ?? 'NONE' });
      }
      try {
        return await executor.execInSandbox({ containerName: sandbox.containerName, command, stdin, timeoutMs });
      } catch (err) {
        const lost = namedFailure(err);
        if (lost?.type === 'SandboxLost' && patched(retireDeadContainersPatch)) {
          const [{ container } = {}] = (lost.details ?? []) as { container?: ContainerDeath }[];
          // Concurrent execs may all find it dead; the first retires it, unless an ensure replaced it already.
          await serially(async () => {
            if (current === sandbox) await retireLost(sandbox, container ?? { state: 'gone' });
          });
        }
        throw err;
      }
    },
    { validator: ownerOnly },
  );

  setHandler(cleanupExpiredSignal, ({ sessionId }) =>
    serially(async () => {
      const sandbox = current;
      // The sweep's snapshot may be stale: a sandbox replaced (or stopped) since is not the one it saw.
      if (!sandbox || sandbox.sessionId !== sessionId || sandbox.status === 'STOPPED' || !isExpired(sandbox, Date.now())) return;
      try {
        await stop(sandbox, 'expired');
        await record('sandbox_cleaned', sandbox);
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        // Keep the record live: the next sweep tries again.
        await record('sandbox_clean_failed', sandbox, describeFailure(err).type);
      }
    }),
  );

  async function create(now: number, lifetimeMs: number, maxPerUser: number | undefined): Promise<SandboxRecord> {
    // uuid4() is seeded by the workflow: the same id on replay, so the container name is too.
    const sessionId = uuid4();
    const planned = {
      sessionId, chatId, ownerId,
      containerName: sandboxContainerName(sessionId),
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + lifetimeMs).toISOString(),
    };
    let containerId: string;
    try {
      ({ containerId } = await containers.createSandboxContainer({ ...planned, maxPerUser }));
    } catch (err) {
      if (!(err instanceof ActivityFailure) || !patched(discardFailedCreatePatch)) throw err;
      throw await discardFailedCreate(planned, err);
    }
    const sandbox: SandboxRecord = { ...planned, containerId, status: 'RUNNING' };
    setCurrent(sandbox);
    await record('sandbox_created', sandbox);
    return sandbox;
  }

  /**
   * After a create gave up: removes the container it may have made and marks its row stopped,
   * so no half-made sandbox stays behind; then the failure to answer with, by name. A refusal
   * at the owner's limit made nothing and passes through as it is.
   */
  async function discardFailedCreate(planned: Pick<SandboxRecord, 'sessionId' | 'containerName'>, err: ActivityFailure) {
    const { type, message } = describeFailure(err);
    if (type === 'SandboxQuotaExceeded') return err;
    await stopper.stopSandboxContainer({ sessionId: planned.sessionId, containerName: planned.containerName, reason: 'failed' });
    if (isErrorCode(type)) return err;
    return domainFailure('SandboxCreateFailed', `the sandbox container could not be created: ${message}`, { cause: type, retryAfterSeconds: 5 });
  }

  // Determinism: every wait below is a workflow condition or timer derived from the record.
  // Once past historyLimit, not at it: running sandboxes decided so, and replay must agree.
  const historyTooLong = () => shouldContinueAsNew(historyLimit + 1);
  for (;;) {
    if (historyTooLong()) {
      await condition(allHandlersFinished);
      // Plain data only crosses continue-as-new: the sandbox record, not the queue or handlers.
      await continueAsNew<typeof sandboxWorkflow>({ chatId, ownerId, ttlMs, historyLimit: input.historyLimit, current });
    }
    const watched = current;
    if (watched?.status === 'RUNNING') {
      const untilExpiry = Date.parse(watched.expiresAt) - Date.now();
      const changed = await condition(() => current !== watched || historyTooLong(), Math.max(untilExpiry, 1));
      if (!changed) {
        await serially(async () => {
          if (current !== watched) return;
          await readModel.markSandboxExpired({ sessionId: watched.sessionId });
          setCurrent({ ...watched, status: 'EXPIRED' });
        });
      }
    } else if (watched?.status === 'EXPIRED') {
      await condition(() => current !== watched || historyTooLong());
    } else {
      // No live sandbox: once nothing is in flight the chat's workflow has nothing left to do.
      await condition(allHandlersFinished);
      if (current === watched) {
        // A run whose only create failed or was refused ends without a sandbox: not STARTING for ever.
        if (!watched) upsertFinalStatus(sandboxKind, 'STOPPED');
        return watched;
      }
    }
  }
}
