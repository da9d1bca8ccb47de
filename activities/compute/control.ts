// TEMPORARY stub (lead's branch): the control engineer's module replaces it at merge.
import type { KernelPlacement } from '../../domain/compute/compute';
import type { ComputeStatus } from '../../domain/compute/status';

export interface ComputeControlActivities {
  scheduleComputeSession(input: { sessionId: string }): Promise<{ placed: KernelPlacement[] } | { wait: string }>;
  recordComputeTransition(input: { sessionId: string; from: ComputeStatus; to: ComputeStatus; reason?: string; at: number }): Promise<void>;
  setComputeKernelContainer(input: { kernelId: string; containerId: string }): Promise<void>;
  computeDependencyOutcome(input: { sessionId: string }): Promise<'ready' | 'waiting' | { failed: string; status: string }>;
  computeSessionsToWake(input: { sessionId: string }): Promise<string[]>;
  modifyComputeSession(input: { sessionId: string; name?: string; priority?: number; idleTimeoutSeconds?: number }): Promise<void>;
  computeSessionsToCheck(input: { deadAfterSeconds: number }): Promise<{ id: string; reason: string }[]>;
}
