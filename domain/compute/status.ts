import { domainFailure } from '../shared/errors';

/**
 * Backend.AI's session statuses, in the order a session normally passes them. A session is
 * accepted PENDING (waiting for its start time, its dependencies or room on a node), SCHEDULED
 * once nodes are chosen and resources reserved, then PREPARING (network, keys, volumes), PULLING
 * (images to its nodes), PREPARED, CREATING (containers), RUNNING. RESTARTING returns to
 * RUNNING. TERMINATING ends in TERMINATED; ERROR and CANCELLED end it otherwise.
 */
export const computeStatuses = [
  'PENDING', 'SCHEDULED', 'PREPARING', 'PULLING', 'PREPARED', 'CREATING', 'RUNNING', 'RESTARTING', 'TERMINATING', 'TERMINATED', 'ERROR', 'CANCELLED',
] as const;
export type ComputeStatus = (typeof computeStatuses)[number];

/** Where a session may go from each status; nothing leaves a final one. */
export const computeTransitions: Readonly<Record<ComputeStatus, readonly ComputeStatus[]>> = {
  PENDING: ['SCHEDULED', 'CANCELLED', 'ERROR', 'TERMINATING'],
  SCHEDULED: ['PREPARING', 'PENDING', 'CANCELLED', 'ERROR', 'TERMINATING'],
  PREPARING: ['PULLING', 'PREPARED', 'ERROR', 'TERMINATING'],
  PULLING: ['PREPARED', 'ERROR', 'TERMINATING'],
  PREPARED: ['CREATING', 'ERROR', 'TERMINATING'],
  CREATING: ['RUNNING', 'ERROR', 'TERMINATING'],
  RUNNING: ['RESTARTING', 'TERMINATING', 'ERROR'],
  RESTARTING: ['RUNNING', 'TERMINATING', 'ERROR'],
  TERMINATING: ['TERMINATED', 'ERROR'],
  TERMINATED: [],
  ERROR: [],
  CANCELLED: [],
};

export const finalComputeStatuses: readonly ComputeStatus[] = ['TERMINATED', 'ERROR', 'CANCELLED'];

export function isFinalComputeStatus(status: ComputeStatus): boolean {
  return finalComputeStatuses.includes(status);
}

export function canTransit(from: ComputeStatus, to: ComputeStatus): boolean {
  return computeTransitions[from].includes(to);
}

/**
 * The one check every status change passes: a change the map does not allow is a bug in the
 * caller, named InvalidSessionState with the current status, never written.
 */
export function assertTransition(from: ComputeStatus, to: ComputeStatus): void {
  if (!canTransit(from, to)) throw invalidSessionState(from, `cannot go from ${from} to ${to}`);
}

/** An action in a status that does not allow it: the client gets the current status to decide what next. */
export function invalidSessionState(current: ComputeStatus, detail: string, allowed?: readonly ComputeStatus[]) {
  return domainFailure('InvalidSessionState', `the session is ${current}: ${detail}`, { current_status: current, ...(allowed ? { allowed_statuses: allowed } : {}) });
}
