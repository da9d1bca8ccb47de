import { performance } from 'node:perf_hooks';
import type { CheckOutcome } from '../../domain/selfCheck/selfCheck';

/** Runs a probe and reports how long it took, measured here rather than in workflow time. */
export async function timed(probe: () => Promise<string>): Promise<CheckOutcome> {
  const started = performance.now();
  const detail = await probe();
  return { detail, durationMs: Math.round(performance.now() - started) };
}
