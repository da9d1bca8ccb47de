import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { createSandboxStore } from '../../activities/sandbox/store';
import { makeSandboxWorkflowId, stopSandboxUpdate } from '../../domain/sandbox/sandbox';

/**
 * Stops every live sandbox of a user whose access was revoked, through each chat's workflow as
 * DELETE …/sandbox does (the workflow stops the container and records it). Answers the chats.
 */
export async function stopSandboxesOf(deps: { temporal: Client; pool: Pool }, ownerId: string): Promise<string[]> {
  const chats = await createSandboxStore(deps.pool).liveChatsOf(ownerId);
  await Promise.all(chats.map(async (chatId) => {
    try {
      await deps.temporal.workflow.getHandle(makeSandboxWorkflowId(chatId)).executeUpdate(stopSandboxUpdate, { args: [{ ownerId }] });
    } catch (err) {
      // No workflow runs for the chat: nothing is left to stop (the sweep removes a stray container).
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }));
  return chats;
}
