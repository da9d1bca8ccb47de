import type { Client } from '@temporalio/client';
import type { ComputeStore } from '../../activities/compute/store';
import { makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import type { computeSessionWorkflow } from '../../workflows/compute/computeSession';
import { ownerScope, type Principal } from '../platform/auth';
import { ApiError } from '../platform/problems';
import { sessionNotFound } from './sessions';

/**
 * What every route acting on one session starts with: its row, after the owner check (another
 * user's session is a 404, as one that does not exist), and a handle on its workflow.
 */
export function sessionWorkflowLookup(store: ComputeStore, temporal: Client) {
  return async (id: string, principal: Principal) => {
    const info = await store.session(id, ownerScope(principal));
    if (!info) throw sessionNotFound(id);
    return { info, handle: temporal.workflow.getHandle<typeof computeSessionWorkflow>(makeComputeSessionWorkflowId(id)) };
  };
}

/** An ended session has no workflow to ask: nothing runs in it. */
export const sessionEnded = (id: string, status: string) => new ApiError('InvalidSessionState', `session ${id} has ended (${status})`, { current_status: status });
