/**
 * The one lifecycle vocabulary of the `SessionStatus` search attribute, whatever the kind: each
 * kind keeps its own, richer statuses (Piston's `OK/TO…`, a terminal's `active/closed`, a PXE
 * session's `ACTIVE/STOPPED`) in its api and in `SessionDetail`, and maps each onto one of these
 * words in its manifest (`domain/<kind>/kind.ts`). So one query — `OwnerId='…' AND
 * SessionStatus='RUNNING'` — lists everything a user has running.
 */
export const lifecycleStatuses = [
  /** Accepted, waiting for its turn (a queue, a schedule, resources). */
  'PENDING',
  /** Being set up: containers created, targets made, files written. */
  'STARTING',
  /** Usable, or at work: a sandbox to exec in, a terminal to type in, an execution running. */
  'RUNNING',
  /** Being torn down. */
  'STOPPING',
  /** Finished as it should, nothing left behind (a user program that exited 1 still ENDED: its outcome is the user's). */
  'ENDED',
  /** Could not start, or broke; `SessionDetail` and the workflow's details say why. */
  'FAILED',
] as const;

export type Lifecycle = (typeof lifecycleStatuses)[number];
