import { ActivityFailure, allHandlersFinished, condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ExecutionActivities } from '../../activities/execution/execution';
import { acquireUpdate, poolStateQuery, releaseSignal, type AcquireRequest, type Lease, type PoolContainer, type PoolSettings, type PoolState } from '../../domain/execution/execution';
import { executionPoolKind } from '../../domain/execution/kind';
import { domainFailure } from '../../domain/shared/errors';
import { shouldContinueAsNew } from '../shared/continueAsNew';
import { upsertStatus } from '../shared/status';


// Creating or removing a container is a few hundred ms; a stalled daemon gets 30 s, and
// infrastructure errors are retried (both activities are idempotent by container name/id).
const docker = proxyActivities<ExecutionActivities>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 4, initialInterval: '200ms', nonRetryableErrorTypes: ['ImageNotFound'] },
});

/**
 * One runtime's pool of warm execution containers (Azure dynamic-sessions semantics): keep
 * `readySessions` ready, hand one out per execution (an `acquire` update), take it back (the
 * `release` signal), keep a session's container for its caller until the cooldown, retire
 * what is idle past it, and never exceed `maxContainers` — a request at the cap waits
 * `acquireWaitMs`, then fails with PoolExhausted.
 */
export async function executionPoolWorkflow(initial: PoolState): Promise<void> {
  // Plain objects only: this state is carried across continue-as-new.
  const { settings } = initial;
  const containers: PoolContainer[] = initial.containers.filter((c) => c.state !== 'starting');
  let leasesHandedOut = 0;
  let waiting = 0;
  let changed = false;
  let creations = 0;
  const now = () => Date.now(); // workflow time: deterministic on replay

  setHandler(poolStateQuery, () => ({ settings, containers, leasesHandedOut }));

  setHandler(releaseSignal, ({ leaseId, retire }) => {
    const container = containers.find((c) => c.leaseId === leaseId);
    if (!container) return;
    container.leaseId = undefined;
    container.lastUsedAt = now();
    container.state = retire ? 'retiring' : container.sessionKey ? 'idle-session' : 'ready';
    changed = true;
  });

  setHandler(acquireUpdate, async (request: AcquireRequest): Promise<Lease> => {
    // The same request again (a client retrying after a lost answer) gets the same container.
    const held = containers.find((c) => c.leaseId === request.leaseId && c.state === 'leased');
    if (held) return { leaseId: request.leaseId, containerId: held.containerId, cold: false };
    waiting++;
    try {
      const deadline = now() + (request.waitMs ?? settings.acquireWaitMs);
      // Several waiters can wake in one activation: re-check after waking, wait again if beaten.
      while (!canServe(request)) {
        const remaining = deadline - now();
        if (remaining <= 0 || !(await condition(() => canServe(request), remaining))) {
          throw domainFailure('PoolExhausted', `all ${settings.maxContainers} ${settings.runtime} containers are busy`, {
            runtime: settings.runtime, maxContainers: settings.maxContainers, retryAfterSeconds: Math.max(1, Math.ceil(settings.acquireWaitMs / 1000)),
          });
        }
      }
      const existing = sessionContainer(request) ?? (request.sessionKey && sessionContainerBusy(request) ? undefined : containers.find((c) => c.state === 'ready'));
      const container = existing ?? (await startContainer());
      container.state = 'leased';
      container.leaseId = request.leaseId;
      container.sessionKey = request.sessionKey;
      container.lastUsedAt = now();
      leasesHandedOut++;
      changed = true;
      return { leaseId: request.leaseId, containerId: container.containerId, cold: !existing };
    } finally {
      waiting--;
    }
  });

  function sessionContainer(request: AcquireRequest): PoolContainer | undefined {
    return request.sessionKey ? containers.find((c) => c.sessionKey === request.sessionKey && c.state === 'idle-session') : undefined;
  }
  function sessionContainerBusy(request: AcquireRequest): boolean {
    return containers.some((c) => c.sessionKey === request.sessionKey && (c.state === 'leased' || c.state === 'starting'));
  }
  function canServe(request: AcquireRequest): boolean {
    if (sessionContainer(request)) return true;
    // A session's second request waits for its container rather than taking another.
    if (request.sessionKey && sessionContainerBusy(request)) return false;
    return containers.some((c) => c.state === 'ready') || containers.length < settings.maxContainers;
  }

  async function startContainer(): Promise<PoolContainer> {
    // The name comes from workflow state, so a retried create finds the container it made.
    // The whole run id: run ids are time-ordered, so a prefix is shared by pools started together.
    const name = `sf-exec-${settings.runtime}-${workflowInfo().runId}-${++creations}`;
    const container: PoolContainer = { containerId: name, state: 'starting', lastUsedAt: now() };
    containers.push(container);
    try {
      container.containerId = await docker.createExecutionContainer({ name, image: settings.image, runtime: settings.runtime, pool: workflowInfo().workflowId });
      return container;
    } catch (err) {
      containers.splice(containers.indexOf(container), 1);
      changed = true;
      throw err;
    }
  }

  upsertStatus(executionPoolKind, 'RUNNING');
  // Containers a crashed run (or a lost worker) left behind, and nobody here knows, go first.
  await docker.removeOrphanExecutionContainers({ pool: workflowInfo().workflowId, keep: containers.map((c) => c.containerId) });

  for (;;) {
    changed = false;
    const at = now();
    const leaseExpired = (c: PoolContainer) => c.state === 'leased' && at - c.lastUsedAt > settings.leaseTtlMs;
    const cooledDown = (c: PoolContainer) => (c.state === 'idle-session' || c.state === 'ready') && at - c.lastUsedAt > settings.cooldownMs;
    const ready = containers.filter((c) => c.state === 'ready');
    const surplusReady = new Set(ready.slice(settings.readySessions));
    const retiring = containers.filter((c) => c.state === 'retiring' || leaseExpired(c) || (cooledDown(c) && (c.state === 'idle-session' || surplusReady.has(c))));
    for (const c of retiring) containers.splice(containers.indexOf(c), 1);
    await Promise.all(retiring.map((c) => docker.removeExecutionContainer({ containerId: c.containerId })));

    // Replenish the warm set, within the cap.
    const missing = Math.min(settings.readySessions - containers.filter((c) => c.state === 'ready').length, settings.maxContainers - containers.length);
    try {
      for (let i = 0; i < missing; i++) {
        const container = await startContainer();
        container.state = 'ready';
      }
    } catch (err) {
      // A failed warm-up must not end the pool: requests still create containers on demand.
      if (!(err instanceof ActivityFailure)) throw err;
    }

    // Determinism: continue-as-new only between requests, with every handler done.
    if ((leasesHandedOut >= settings.leasesPerRun || shouldContinueAsNew()) && waiting === 0) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof executionPoolWorkflow>({ settings, containers, leasesHandedOut: 0 });
    }

    await condition(() => changed, nextDeadline(containers, settings, now()));
  }
}

/**
 * Time until the earliest cooldown or lease expiry (at least a second, at most a cooldown).
 * The warm containers `readySessions` keeps never fall due: counting them, an idle pool woke
 * every second once they had cooled down. Replay compares a timer's id, not its duration, so
 * durations computed differently leave recorded histories valid.
 */
function nextDeadline(containers: PoolContainer[], settings: PoolSettings, at: number): number {
  const kept = new Set(containers.filter((c) => c.state === 'ready').slice(0, settings.readySessions));
  const deadlines = containers.filter((c) => !kept.has(c)).map((c) => c.lastUsedAt + (c.state === 'leased' ? settings.leaseTtlMs : settings.cooldownMs) - at + 50);
  return Math.max(1000, Math.min(settings.cooldownMs, ...deadlines));
}
