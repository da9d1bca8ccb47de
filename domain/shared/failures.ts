import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

/**
 * Reading a Temporal failure, for the api and for workflows alike (pure: no Node built-ins).
 * A failure reaches its reader wrapped once per boundary it crossed — the client's
 * WorkflowFailedError or WorkflowUpdateFailedError, then an ActivityFailure, then what the
 * activity threw — so the part that names the problem sits a few causes down.
 */

/** Far deeper than any wrapping Temporal does; only a cycle could go on. */
const maxChainLength = 8;

/** `err` and the causes it wraps, outermost first. */
export function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let cause = err; cause !== undefined && cause !== null && chain.length < maxChainLength; cause = (cause as { cause?: unknown }).cause) {
    chain.push(cause);
  }
  return chain;
}

/** The first named failure (an ApplicationFailure with a type, e.g. from `domainFailure`) in the chain. */
export function namedFailure(err: unknown): ApplicationFailure | undefined {
  return causeChain(err).find((cause): cause is ApplicationFailure => cause instanceof ApplicationFailure && Boolean(cause.type));
}

/**
 * A failure as a report or a read model shows it: for an activity's failure, the type and
 * message of what the activity threw rather than the wrapper's "activity task failed".
 */
export function describeFailure(err: unknown): { type: string; message: string } {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof Error) return { type: cause.name, message: cause.message };
  return { type: 'Error', message: String(cause) };
}
