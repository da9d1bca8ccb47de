import { ActivityFailure, allHandlersFinished, condition, continueAsNew, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
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
 * Runs started before fair shares keep the rules (and the commands) their histories recorded
 * until their next continue-as-new: no per-owner limits, no retiring of idle sessions for
 * newcomers, and a new run removes every container it does not know.
 */
const fairSharesPatch = 'execution-pool-fair-shares';

/** A container Docker would not remove is tried again after this long; the pool carries on. */
const removalRetryMs = 5000;

/**
 * One runtime's pool of warm execution containers (Azure dynamic-sessions semantics): keep
 * `readySessions` ready, hand one out per execution (an `acquire` update), take it back (the
 * `release` signal), keep a session's container for its caller until the cooldown, retire
 * what is idle past it, and never exceed `maxContainers`.
 *
 * Fair shares: one owner holds at most `maxLeasesPerOwner` leases and keeps at most
 * `maxSessionsPerOwner` session containers; at the cap, a waiting request gets a container by
 * retiring the least recently used idle session (whose identifier then starts fresh, as after a
 * cooldown). A request that cannot be served within `acquireWaitMs` fails with PoolExhausted,
 * or ExecutionQuotaExceeded when its owner's share is what stops it.
 */
export async function executionPoolWorkflow(initial: PoolState): Promise<void> {
  const fairShares = patched(fairSharesPatch);
  // Plain objects only: this state is carried across continue-as-new.
  const { settings } = initial;
  const containers: PoolContainer[] = initial.containers.filter((c) => c.state !== 'starting');
  let leasesHandedOut = 0;
  let waiting = 0;
  let changed = false;
  let creations = 0;
  const now = () => Date.now(); // workflow time: deterministic on replay

  setHandler(poolStateQuery, () => ({ settings, containers, leasesHandedOut }));

  setHandler(releaseSignal, ({ leaseId, retire, containerId }) => {
    const container = containers.find((c) => c.leaseId === leaseId)
      // An execution that outlived the run which leased it: its container held another run's state.
      ?? (fairShares && containerId !== undefined ? containers.find((c) => c.containerId === containerId && c.state === 'in-use-orphan') : undefined);
    if (!container) return;
    const orphan = container.state === 'in-use-orphan';
    container.leaseId = undefined;
    container.lastUsedAt = now();
    container.state = retire || orphan ? 'retiring' : container.sessionKey ? 'idle-session' : 'ready';
    if (container.state === 'ready') container.ownerId = undefined;
    changed = true;
  });

  setHandler(acquireUpdate, async (request: AcquireRequest): Promise<Lease> => {
    // The same request again (a client retrying after a lost answer) gets the same container.
    const held = containers.find((c) => c.leaseId === request.leaseId && c.state === 'leased');
    if (held) return { leaseId: request.leaseId, containerId: held.containerId, cold: false };
    if (fairShares) refuseBeyondSessionShare(request);
    waiting++;
    try {
      const deadline = now() + (request.waitMs ?? settings.acquireWaitMs);
      // Several waiters can wake in one activation: re-check after waking, wait again if beaten.
      while (!canServe(request)) {
        const remaining = deadline - now();
        if (remaining <= 0 || !(await condition(() => canServe(request), remaining))) throw refusal(request);
      }
      // Again after the wait, in the activation that takes the container: another request of the owner's may have won.
      if (fairShares) refuseBeyondSessionShare(request);
      const existing = sessionContainer(request) ?? (request.sessionKey && sessionContainerBusy(request) ? undefined : containers.find((c) => c.state === 'ready'));
      // Chosen in the same activation as canServe's answer, so no other waiter can take it.
      const displaced = !existing && fairShares && containers.length >= settings.maxContainers ? takeLeastRecentlyUsedIdleSession() : undefined;
      const container = existing ?? (await startContainer(request, displaced));
      container.state = 'leased';
      container.leaseId = request.leaseId;
      container.sessionKey = request.sessionKey;
      container.ownerId = request.ownerId;
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
  function ownersLeases(ownerId: string | undefined): number {
    return ownerId === undefined ? 0 : containers.filter((c) => c.ownerId === ownerId && (c.state === 'leased' || c.state === 'starting')).length;
  }
  function overLeaseShare(request: AcquireRequest): boolean {
    return fairShares && settings.maxLeasesPerOwner !== undefined && ownersLeases(request.ownerId) >= settings.maxLeasesPerOwner;
  }
  function canServe(request: AcquireRequest): boolean {
    if (overLeaseShare(request)) return false;
    if (sessionContainer(request)) return true;
    // A session's second request waits for its container rather than taking another.
    if (request.sessionKey && sessionContainerBusy(request)) return false;
    return containers.some((c) => c.state === 'ready') || containers.length < settings.maxContainers
      || (fairShares && containers.some((c) => c.state === 'idle-session'));
  }

  /** A new session identifier beyond the owner's share is refused at once: waiting cannot help before a cooldown. */
  function refuseBeyondSessionShare(request: AcquireRequest): void {
    const limit = settings.maxSessionsPerOwner;
    if (limit === undefined || request.ownerId === undefined || !request.sessionKey || containers.some((c) => c.sessionKey === request.sessionKey)) return;
    const kept = containers.filter((c) => c.ownerId === request.ownerId && c.sessionKey !== undefined && c.state !== 'retiring');
    if (kept.length < limit) return;
    const idleSince = kept.filter((c) => c.state === 'idle-session').map((c) => c.lastUsedAt);
    const freedInMs = idleSince.length > 0 ? Math.min(...idleSince) + settings.cooldownMs - now() : settings.acquireWaitMs;
    throw domainFailure('ExecutionQuotaExceeded', `you already keep ${limit} ${settings.runtime} sessions; reuse one, or wait for one to cool down`, {
      runtime: settings.runtime, limit: 'sessions', maxSessionsPerOwner: limit, retryAfterSeconds: Math.max(1, Math.ceil(freedInMs / 1000)),
    });
  }

  function refusal(request: AcquireRequest) {
    const retryAfterSeconds = Math.max(1, Math.ceil(settings.acquireWaitMs / 1000));
    if (overLeaseShare(request)) {
      return domainFailure('ExecutionQuotaExceeded', `you already run ${settings.maxLeasesPerOwner} ${settings.runtime} executions at once`, {
        runtime: settings.runtime, limit: 'in-flight', maxLeasesPerOwner: settings.maxLeasesPerOwner, retryAfterSeconds,
      });
    }
    return domainFailure('PoolExhausted', `all ${settings.maxContainers} ${settings.runtime} containers are busy`, {
      runtime: settings.runtime, maxContainers: settings.maxContainers, retryAfterSeconds,
    });
  }

  function takeLeastRecentlyUsedIdleSession(): PoolContainer | undefined {
    const idle = containers.filter((c) => c.state === 'idle-session').sort((a, b) => a.lastUsedAt - b.lastUsedAt)[0];
    if (idle) idle.state = 'retiring';
    return idle;
  }

  /** Removes a container and forgets it; one Docker will not remove stays `retiring` for the loop to try again. */
  async function removeContainer(container: PoolContainer): Promise<void> {
    container.state = 'retiring';
    container.leaseId = undefined;
    await docker.removeExecutionContainer({ containerId: container.containerId });
    const at = containers.indexOf(container);
    if (at >= 0) containers.splice(at, 1);
  }

  async function startContainer(request?: AcquireRequest, displaced?: PoolContainer): Promise<PoolContainer> {
    // The name comes from workflow state, so a retried create finds the container it made.
    // The whole run id: run ids are time-ordered, so a prefix is shared by pools started together.
    const name = `sf-exec-${settings.runtime}-${workflowInfo().runId}-${++creations}`;
    // Owned while it starts, so the owner's shares count it.
    const owned = fairShares && request ? { ownerId: request.ownerId, sessionKey: request.sessionKey } : {};
    const container: PoolContainer = { containerId: name, state: 'starting', lastUsedAt: now(), ...owned };
    containers.push(container);
    try {
      // The displaced session goes first, so the pool never holds more than its cap.
      if (displaced) await removeContainer(displaced);
      container.containerId = await docker.createExecutionContainer({ name, image: settings.image, runtime: settings.runtime, pool: workflowInfo().workflowId });
      return container;
    } catch (err) {
      containers.splice(containers.indexOf(container), 1);
      changed = true;
      throw err;
    }
  }

  upsertStatus(executionPoolKind, 'RUNNING');
  if (fairShares) {
    // Containers an earlier run left behind: idle ones go now; one an execution still runs in
    // is kept until the lease TTL (or that execution's release), so no running job is cut off.
    const inUse = await docker.sweepOrphanExecutionContainers({ pool: workflowInfo().workflowId, keep: containers.map((c) => c.containerId) });
    for (const containerId of inUse) containers.push({ containerId, state: 'in-use-orphan', lastUsedAt: now() });
  } else {
    await docker.removeOrphanExecutionContainers({ pool: workflowInfo().workflowId, keep: containers.map((c) => c.containerId) });
  }

  for (;;) {
    changed = false;
    const at = now();
    const leaseExpired = (c: PoolContainer) => (c.state === 'leased' || c.state === 'in-use-orphan') && at - c.lastUsedAt > settings.leaseTtlMs;
    const cooledDown = (c: PoolContainer) => (c.state === 'idle-session' || c.state === 'ready') && at - c.lastUsedAt > settings.cooldownMs;
    const ready = containers.filter((c) => c.state === 'ready');
    const surplusReady = new Set(ready.slice(settings.readySessions));
    const retiring = containers.filter((c) => c.state === 'retiring' || leaseExpired(c) || (cooledDown(c) && (c.state === 'idle-session' || surplusReady.has(c))));
    if (fairShares) {
      const removals = await Promise.allSettled(retiring.map(removeContainer));
      // A transient Docker error must not end the pool: what failed stays retiring, tried again later.
      for (const removal of removals) if (removal.status === 'rejected' && !(removal.reason instanceof ActivityFailure)) throw removal.reason;
    } else {
      for (const c of retiring) containers.splice(containers.indexOf(c), 1);
      await Promise.all(retiring.map((c) => docker.removeExecutionContainer({ containerId: c.containerId })));
    }

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
 * Time until the earliest cooldown, lease expiry or removal retry (at least a second, at most
 * a cooldown). The warm containers `readySessions` keeps never fall due: counting them, an idle
 * pool woke every second once they had cooled down. Replay compares a timer's id, not its
 * duration, so durations computed differently leave recorded histories valid.
 */
function nextDeadline(containers: PoolContainer[], settings: PoolSettings, at: number): number {
  const kept = new Set(containers.filter((c) => c.state === 'ready').slice(0, settings.readySessions));
  const dueIn = (c: PoolContainer) => {
    if (c.state === 'retiring') return removalRetryMs;
    const lasts = c.state === 'leased' || c.state === 'in-use-orphan' ? settings.leaseTtlMs : settings.cooldownMs;
    return c.lastUsedAt + lasts - at + 50;
  };
  return Math.max(1000, Math.min(settings.cooldownMs, ...containers.filter((c) => !kept.has(c)).map(dueIn)));
}
