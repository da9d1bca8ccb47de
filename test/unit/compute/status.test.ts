import { ApplicationFailure } from '@temporalio/common';
import { computeSessionKind } from '../../../domain/compute/kind';
import { assertTransition, computeStatuses, computeTransitions, isFinalComputeStatus, type ComputeStatus } from '../../../domain/compute/status';

const allowed: [ComputeStatus, ComputeStatus][] = [
  ['PENDING', 'SCHEDULED'], ['PENDING', 'CANCELLED'], ['PENDING', 'ERROR'], ['PENDING', 'TERMINATING'],
  ['SCHEDULED', 'PREPARING'], ['SCHEDULED', 'PENDING'], ['SCHEDULED', 'CANCELLED'], ['SCHEDULED', 'ERROR'], ['SCHEDULED', 'TERMINATING'],
  ['PREPARING', 'PULLING'], ['PREPARING', 'PREPARED'], ['PREPARING', 'ERROR'], ['PREPARING', 'TERMINATING'],
  ['PULLING', 'PREPARED'], ['PULLING', 'ERROR'], ['PULLING', 'TERMINATING'],
  ['PREPARED', 'CREATING'], ['PREPARED', 'ERROR'], ['PREPARED', 'TERMINATING'],
  ['CREATING', 'RUNNING'], ['CREATING', 'ERROR'], ['CREATING', 'TERMINATING'],
  ['RUNNING', 'RESTARTING'], ['RUNNING', 'TERMINATING'], ['RUNNING', 'ERROR'],
  ['RESTARTING', 'RUNNING'], ['RESTARTING', 'TERMINATING'], ['RESTARTING', 'ERROR'],
  ['TERMINATING', 'TERMINATED'], ['TERMINATING', 'ERROR'],
];
const isAllowed = (from: ComputeStatus, to: ComputeStatus) => allowed.some(([a, b]) => a === from && b === to);

describe('the compute status map', () => {
  it('is exactly Backend.AI\'s map as written here', () => {
    expect(Object.entries(computeTransitions).flatMap(([from, tos]) => tos.map((to) => [from, to])).sort()).toEqual([...allowed].sort());
  });

  it.each(allowed)('lets a session go from %s to %s', (from, to) => {
    expect(() => assertTransition(from, to)).not.toThrow();
  });

  it('refuses every other pair with InvalidSessionState carrying the current status', () => {
    const refused = computeStatuses.flatMap((from) => computeStatuses.filter((to) => !isAllowed(from, to)).map((to) => [from, to] as const));
    expect(refused.length).toBe(computeStatuses.length ** 2 - allowed.length);
    for (const [from, to] of refused) {
      let failure: unknown;
      try {
        assertTransition(from, to);
      } catch (err) {
        failure = err;
      }
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type: 'InvalidSessionState', nonRetryable: true, details: [{ current_status: from }] });
    }
  });

  it('lets nothing leave a final status', () => {
    for (const status of computeStatuses.filter(isFinalComputeStatus)) expect(computeTransitions[status]).toEqual([]);
    expect(computeStatuses.filter(isFinalComputeStatus)).toEqual(['TERMINATED', 'ERROR', 'CANCELLED']);
  });

  it('gives every status its lifecycle word: in use RUNNING, ended ENDED, ERROR the one failure', () => {
    expect(Object.keys(computeSessionKind.lifecycle).sort()).toEqual([...computeStatuses].sort());
    expect(computeSessionKind.lifecycle).toMatchObject({ PENDING: 'PENDING', RUNNING: 'RUNNING', RESTARTING: 'STARTING', TERMINATING: 'STOPPING', TERMINATED: 'ENDED', CANCELLED: 'ENDED', ERROR: 'FAILED' });
    for (const status of ['SCHEDULED', 'PREPARING', 'PULLING', 'PREPARED', 'CREATING'] as const) expect(computeSessionKind.lifecycle[status]).toBe('STARTING');
  });
});
