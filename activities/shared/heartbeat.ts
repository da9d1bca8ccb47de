import { Context } from '@temporalio/activity';

/**
 * Runs `work`, heartbeating every `everyMs` while it runs. With a heartbeat timeout on the
 * activity, a worker that dies mid-activity is noticed within that timeout instead of the whole
 * start-to-close one (30 s and more), and the retry runs on a live worker. Outside an activity
 * (a test calling it directly) it only runs `work`.
 */
export async function heartbeating<T>(work: () => Promise<T>, everyMs = 1000): Promise<T> {
  const activity = currentActivity();
  if (!activity) return work();
  activity.heartbeat();
  const beat = setInterval(() => activity.heartbeat(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}
