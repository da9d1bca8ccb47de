import type { SearchAttributePair, SearchAttributeUpdatePair } from '@temporalio/common';
import type { Lifecycle } from './lifecycle';
import { OwnerId, SessionDetail, SessionKind, SessionStatus } from './searchAttributes';

/** The `SessionKind` search attribute: one value per workflow family a person looks for in the Web UI. */
export type SessionKindValue =
  | 'self-check'
  | 'compute'
  | 'compute-reconcile'
  | 'compute-commit'
  | 'execution'
  | 'execution-pool'
  | 'sandbox'
  | 'sandbox-sweep'
  | 'retention'
  | 'terminal'
  | 'pxe'
  | 'pxe-image'
  | 'pxe-boot-server-status';

/**
 * What the platform needs to know about one workflow of a kind: its `SessionKind`, how its id is
 * built from the business key, and how its own statuses map onto the lifecycle words. Each kind
 * declares its workflows once, in `domain/<kind>/kind.ts`; starts (sessionStartOptions) and status
 * upserts (workflows/shared/status.ts) are built from it, so no call site spells these by hand.
 */
export interface SessionWorkflowManifest<Status extends string, Key extends unknown[]> {
  kind: SessionKindValue;
  /** The exported workflow function's name: the workflow type in Temporal. */
  workflowType: string;
  workflowId: (...key: Key) => string;
  /** Every status of the kind, each with its lifecycle word. */
  lifecycle: Readonly<Record<Status, Lifecycle>>;
  /** The kind's own search attributes besides SessionKind, SessionStatus, SessionDetail and OwnerId; every start gives each. */
  searchAttributes?: readonly SearchAttributePair['key'][];
}

export function defineSessionWorkflow<const Status extends string, Key extends unknown[]>(
  manifest: SessionWorkflowManifest<Status, Key>,
): SessionWorkflowManifest<Status, Key> {
  return manifest;
}

/** `SessionStatus` (the lifecycle word) and `SessionDetail` (the kind's own status), for a start or an upsert. */
export function statusAttributes<S extends string>(manifest: { lifecycle: Readonly<Record<S, Lifecycle>> }, status: S): [SearchAttributeUpdatePair, SearchAttributeUpdatePair] {
  return [
    { key: SessionStatus, value: manifest.lifecycle[status] },
    { key: SessionDetail, value: status },
  ];
}

export interface SessionStartRequest<S extends string, Key extends unknown[]> {
  key: Key;
  taskQueue: string;
  /** The status the workflow starts in (its lifecycle word goes in SessionStatus). */
  status: S;
  /** Who the session belongs to; absent for the platform's own workflows (pools, sweeps). */
  ownerId?: string;
  /** The kind's own attributes where they apply (SessionName, ChatId, MachineMac, Runtime). */
  attributes?: SearchAttributePair[];
  /** One line in the Web UI's list: what this is and for whom. */
  summary: string;
  details?: string;
}

/**
 * How long one workflow task may take before Temporal gives it to another worker: also how long
 * a workflow stalls when the worker running its task dies. Tasks take milliseconds (an
 * execution's local activities extend theirs with a heartbeat at 80 % of it), so Temporal's
 * 10 s default is only ever waited out after a worker's death; 4 s keeps room for a loaded
 * machine's pauses.
 */
export const sessionWorkflowTaskTimeout = '4s';

/**
 * The options every session workflow starts with: its id from the business key, the task queue,
 * SessionKind / SessionStatus / SessionDetail / OwnerId and the kind's own attributes, and the
 * Web UI's summary. Spread into `workflow.start`, `executeUpdateWithStart`'s start operation or a
 * schedule's action.
 */
export function sessionStartOptions<S extends string, Key extends unknown[]>(manifest: SessionWorkflowManifest<S, Key>, request: SessionStartRequest<S, Key>) {
  const declared = (manifest.searchAttributes ?? []).map((key) => key.name).sort().join(',');
  const given = (request.attributes ?? []).map((pair) => pair.key.name).sort().join(',');
  if (declared !== given) throw new Error(`a ${manifest.kind} workflow starts with the search attributes [${declared}], not [${given}]`);
  const typedSearchAttributes: SearchAttributePair[] = [
    { key: SessionKind, value: manifest.kind },
    ...(statusAttributes(manifest, request.status) as SearchAttributePair[]),
    ...(request.ownerId ? [{ key: OwnerId, value: request.ownerId }] : []),
    ...(request.attributes ?? []),
  ];
  return {
    workflowId: manifest.workflowId(...request.key),
    taskQueue: request.taskQueue,
    workflowTaskTimeout: sessionWorkflowTaskTimeout,
    typedSearchAttributes,
    staticSummary: request.summary,
    ...(request.details ? { staticDetails: request.details } : {}),
  };
}
