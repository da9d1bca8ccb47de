import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { createTerminalStore } from '../../activities/terminal/store';
import { closeUpdate, makeTerminalWorkflowId } from '../../domain/terminal/terminal';

/**
 * Closes every active terminal of a user whose access was revoked, through each session's
 * workflow as DELETE /api/v1/terminals/:id does; the workflow's end notice closes the live
 * WebSocket bridges in every api process. The seed's close reasons have no "revoked": the
 * reason is user_close. Answers the sessions.
 */
export async function closeTerminalsOf(deps: { temporal: Client; pool: Pool }, userId: string): Promise<string[]> {
  const store = createTerminalStore(deps.pool);
  const active = await store.activeSessionsOf(userId);
  await Promise.all(active.map(async ({ id }) => {
    try {
      await deps.temporal.workflow.getHandle(makeTerminalWorkflowId(id)).executeUpdate(closeUpdate, { args: [{ reason: 'user_close' }] });
    } catch (err) {
      // Ended meanwhile (expiry, its own close): the update is refused, and that is the outcome.
      if ((await store.session(id))?.status === 'active') throw err;
    }
  }));
  return active.map(({ id }) => id);
}
