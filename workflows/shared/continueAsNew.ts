import { workflowInfo } from '@temporalio/workflow';

/**
 * Whether a long-lived workflow should hand its state to a new run: the server suggests it,
 * or the history has reached `eventLimit` events (tests pass a small one). Reading
 * workflowInfo() issues no command, so any condition may ask.
 *
 * Determinism: callers continue as new only once their update and signal handlers have
 * finished, so every request accepted by this run is answered by this run.
 */
export function shouldContinueAsNew(eventLimit?: number): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || (eventLimit !== undefined && info.historyLength >= eventLimit);
}
