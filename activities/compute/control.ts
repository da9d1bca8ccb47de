import type { Pool } from 'pg';
import type { KernelLogs, ModifyRequest } from '../../domain/compute/compute';
import { createAbuseStore, type KernelReading } from './abuseStore';
import { createComputeStore, type ComputeStoreSettings, type TransitionRequest } from './store';

export interface ComputeControlDeps {
  pool: Pool;
  computeControl: ComputeStoreSettings;
}

/**
 * The control plane's activities, on the main task queue: thin over the store, each one
 * statement or transaction, each safe to retry (scheduling hands back the nodes it reserved,
 * a transition already written is not written again).
 */
export function createComputeControlActivities({ pool, computeControl }: ComputeControlDeps) {
  const store = createComputeStore(pool, computeControl);
  const abuse = createAbuseStore(pool, computeControl);
  return {
    /** Reserves nodes for a PENDING session's kernels, or says why it must wait; InsufficientResources when it never could fit. */
    scheduleComputeSession({ sessionId }: { sessionId: string }) {
      return store.scheduleSession(sessionId, { deadAfterSeconds: computeControl.nodeDeadAfterSeconds });
    },

    recordComputeTransition(request: TransitionRequest) {
      return store.recordTransition(request);
    },

    async setComputeKernelContainer({ kernelId, containerId }: { kernelId: string; containerId: string | null }): Promise<void> {
      await store.setKernelContainer(kernelId, containerId);
    },

    async clearComputePlacement({ sessionId }: { sessionId: string }): Promise<void> {
      await store.clearPlacement(sessionId);
    },

    computeDependencyOutcome({ sessionId }: { sessionId: string }) {
      return store.dependencyOutcome(sessionId);
    },

    computeSessionsToWake({ sessionId }: { sessionId: string }) {
      return store.sessionsToWake(sessionId);
    },

    async modifyComputeSession({ sessionId, change }: { sessionId: string; change: ModifyRequest }): Promise<void> {
      await store.modifySession(sessionId, change);
    },

    /** The last logs of the kernels of a session that ends, kept for reading after it. */
    async storeComputeKernelLogs({ sessionId, logs }: { sessionId: string; logs: KernelLogs[] }): Promise<void> {
      await store.storeKernelLogs(sessionId, logs);
    },

    computeSessionsToCheck() {
      return store.sessionsToCheck({ deadAfterSeconds: computeControl.nodeDeadAfterSeconds });
    },

    /** One look for abuse: the kernels' measured use judged and kept; warnings recorded, sessions to end for abuse handed back. */
    recordComputeAbuseLook({ lookId, readings }: { lookId: string; readings: KernelReading[] }) {
      return abuse.recordLook(lookId, readings);
    },
  };
}

export type ComputeControlActivities = ReturnType<typeof createComputeControlActivities>;
