import { patched, upsertSearchAttributes } from '@temporalio/workflow';
import { statusAttributes } from '../../domain/shared/kind';
import type { Lifecycle } from '../../domain/shared/lifecycle';

/** Shows a new status in the Web UI: SessionStatus gets its lifecycle word, SessionDetail the status itself. */
export function upsertStatus<S extends string>(manifest: { lifecycle: Readonly<Record<S, Lifecycle>> }, status: S): void {
  upsertSearchAttributes(statusAttributes(manifest, status));
}

/**
 * Determinism: workflows that did not upsert their final status before the session contract
 * (the PXE image and boot-server probes, the sandbox sweep, an execution whose replacement lease
 * was refused, a chat whose only create failed) add that command behind this patch, so their
 * recorded histories still replay.
 */
const finalStatusPatch = 'session-lifecycle-final-status';

/** Upserts the final status of a workflow that gained this command with the session contract. */
export function upsertFinalStatus<S extends string>(manifest: { lifecycle: Readonly<Record<S, Lifecycle>> }, status: S): void {
  if (patched(finalStatusPatch)) upsertStatus(manifest, status);
}
