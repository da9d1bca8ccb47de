import { sessionWorkflowLookup } from './sessionWorkflow';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Response } from 'express';
import { z } from 'zod';
import { createComputeStore, type SessionDetailRow } from '../../activities/compute/store';
import {
  awaitStartUpdate,
  checkAndTransitUpdate,
  destroyUpdate,
  modifyUpdate,
  restartUpdate,
  type ComputeSessionInput,
  type ComputeTimings,
} from '../../domain/compute/compute';
import { computeSessionKind, makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import { createFromTemplateBody, createSessionBody, modifySessionBody, sessionNameField, sessionParamsFromTemplate, type CreateSessionParams } from '../../domain/compute/params';
import { sessionStartOptions } from '../../domain/shared/kind';
import { SessionName } from '../../domain/shared/searchAttributes';
import type { computeSessionWorkflow } from '../../workflows/compute/computeSession';
import { ownerScope, type Principal } from '../platform/auth';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { ComputeRouteDeps } from './admin';
import { registerAbuseRoutes } from './abuse';
import { registerKernelRoutes } from './kernelActions';
import { registerServiceRoutes } from './services';
import { presentSession, sessionsBase, sessionView } from './sessions';

export interface ComputeActionDeps extends ComputeRouteDeps {
  temporal: Client;
  taskQueue: string;
  /** How long a create without enqueue_only waits for RUNNING before it answers with the status then. */
  createWaitSeconds: number;
  timings?: Partial<ComputeTimings>;
}

const idParams = z.object({ id: z.uuid() });
const destroyQuery = z.object({
  forced: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
  recursive: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
});
const renameBody = z.strictObject({ name: sessionNameField });
const checkBody = z.strictObject({ session_ids: z.array(z.uuid()).min(1).max(100) });

const problems = (codes: string) => ({ description: codes, contentType: 'application/problem+json' });

/**
 * The compute session's actions: create (from params, from a template, as a cluster), modify,
 * rename, restart, destroy, and the admin's check-and-transit. Each is admitted or refused
 * against PostgreSQL first (a 4xx changes nothing), then carried out by the session's workflow.
 */
export function registerComputeActionRoutes(api: ApiRoutes, deps: ComputeActionDeps): void {
  const { temporal } = deps;
  const store = createComputeStore(deps.pool, deps.compute);
  // Execute, interrupt, complete: updates on the same workflow, in a module of their own.
  registerKernelRoutes(api, deps);
  // Services and direct access: the same, in theirs.
  registerServiceRoutes(api, deps);
  registerAbuseRoutes(api, deps);

  async function create(principal: Principal, params: CreateSessionParams, res: Response) {
    const admitted = await store.admitSession({ ownerId: principal.userId, params });
    try {
      await startComputeSession(temporal, { taskQueue: deps.taskQueue, input: admitted, timings: deps.timings });
    } catch (err) {
      await store.markStartFailed(admitted.sessionId, `the workflow could not be started: ${(err as Error).message}`);
      throw err;
    }
    if (!params.enqueue_only) {
      await temporal.workflow.getHandle(makeComputeSessionWorkflowId(admitted.sessionId)).executeUpdate(awaitStartUpdate, { args: [{ timeoutMs: deps.createWaitSeconds * 1000 }] });
    }
    res.status(201).json(presentSession((await store.session(admitted.sessionId, undefined))!));
  }

  const sessionFor = sessionWorkflowLookup(store, temporal);

  type SessionHandle = Awaited<ReturnType<typeof sessionFor>>['handle'];

  /**
   * Sends an update to the session's workflow and answers with the session after it. An ended
   * session has no workflow running: `ended` says what that means for this action (a destroy is
   * done already; a restart is InvalidSessionState with the status it ended in).
   */
  async function act(id: string, principal: Principal, send: (handle: SessionHandle) => Promise<unknown>, ended: 'done' | 'refuse'): Promise<SessionDetailRow> {
    const { info, handle } = await sessionFor(id, principal);
    try {
      await send(handle);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      if (ended === 'refuse') throw new ApiError('InvalidSessionState', `session ${id} has ended (${info.status})`, { current_status: info.status });
    }
    return (await store.session(id, undefined)) ?? info;
  }

  const sessionAnswer = { description: 'the session after the action', schema: sessionView };

  api.route(
    {
      method: 'post', path: sessionsBase, summary: 'Create a session (or a cluster) from parameters; waits until RUNNING unless enqueue_only', tag: 'compute', access: 'user', body: createSessionBody,
      responses: {
        201: { description: 'the session: RUNNING, or PENDING/CREATING with enqueue_only or a long wait, or ERROR with the reason', schema: sessionView },
        400: problems('ValidationFailed'),
        403: problems('QuotaExceeded (limit, requested, available)'),
        404: problems('ImageNotFound, NotFound (a dependency)'),
        409: problems('SessionNameTaken'),
        503: problems('InsufficientResources: no node of the scaling group could ever hold it'),
      },
    },
    async ({ body, principal, res }) => create(principal, body, res),
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/from-template`, summary: 'Create a session from a template, with overrides deep-merged into its parameters', tag: 'compute', access: 'user', body: createFromTemplateBody,
      responses: { 201: { description: 'as POST /api/v1/sessions', schema: sessionView }, 404: problems('TemplateNotFound, ImageNotFound') },
    },
    async ({ body, principal, res }) => {
      const template = await store.template(body.template_id);
      if (!template) throw new ApiError('TemplateNotFound', `no session template ${body.template_id}`, { template_id: body.template_id });
      const merged = sessionParamsFromTemplate(template.params, body.overrides ?? {});
      if (!merged.success) throw new ApiError('ValidationFailed', 'the template with these overrides is not a valid session', { errors: merged.errors });
      await create(principal, merged.data, res);
    },
  );

  api.route(
    {
      method: 'patch', path: `${sessionsBase}/:id`, summary: 'Modify a session: name, priority, idle timeout (seconds; 0 turns it off)', tag: 'compute', access: 'user', params: idParams, body: modifySessionBody,
      responses: { 200: sessionAnswer, 409: problems('SessionNameTaken, InvalidSessionState (ended)') },
    },
    async ({ params, body, principal, res }) => {
      const info = await act(params.id, principal, (handle) => handle.executeUpdate(modifyUpdate, { args: [{ name: body.name, priority: body.priority, idleTimeoutSeconds: body.idle_timeout }] }), 'refuse');
      res.json(presentSession(info));
    },
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/rename`, summary: 'Rename a session (unique among your live sessions)', tag: 'compute', access: 'user', params: idParams, body: renameBody,
      responses: { 200: sessionAnswer, 409: problems('SessionNameTaken, InvalidSessionState (ended)') },
    },
    async ({ params, body, principal, res }) => {
      const info = await act(params.id, principal, (handle) => handle.executeUpdate(modifyUpdate, { args: [{ name: body.name }] }), 'refuse');
      res.json(presentSession(info));
    },
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/restart`, summary: 'Restart every kernel of a RUNNING session (vfolder data and files kept)', tag: 'compute', access: 'user', params: idParams,
      responses: { 200: sessionAnswer, 409: problems('InvalidSessionState (with current_status)') },
    },
    async ({ params, principal, res }) => {
      const info = await act(params.id, principal, (handle) => handle.executeUpdate(restartUpdate), 'refuse');
      res.json(presentSession(info));
    },
  );

  api.route(
    {
      method: 'delete', path: `${sessionsBase}/:id`, summary: 'Destroy a session (idempotent); forced=true also while its kernels are being made, recursive=true also the sessions depending on it', tag: 'compute', access: 'user', params: idParams, query: destroyQuery,
      responses: { 200: sessionAnswer, 409: problems('InvalidSessionState: being created and not forced') },
    },
    async ({ params, query, principal, res }) => {
      const { info } = await sessionFor(params.id, principal);
      if (query.recursive) {
        // Dependents first: they wait on this session, and its end would cancel them anyway.
        for (const dependent of await store.dependentsOf(params.id)) {
          await act(dependent, principal, (handle) => handle.executeUpdate(destroyUpdate, { args: [{ forced: query.forced, reason: `destroyed with ${info.name}, which it depends on` }] }), 'done');
        }
      }
      const after = await act(params.id, principal, (handle) => handle.executeUpdate(destroyUpdate, { args: [{ forced: query.forced, reason: 'destroyed by its owner' }] }), 'done');
      res.json(presentSession(after));
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/admin/sessions/check-and-transit', summary: 'Check sessions now: a gone container or dead node → ERROR, PENDING past max_wait → CANCELLED', tag: 'compute', access: 'admin', body: checkBody,
      responses: { 200: { description: 'each session after its check (unknown ids: status null)', schema: z.object({ sessions: z.array(z.object({ id: z.uuid(), status: z.string().nullable(), reason: z.string().nullable() })) }) } },
    },
    async ({ body, principal, res }) => {
      const sessions = await Promise.all(body.session_ids.map(async (id) => {
        const info = await store.session(id, ownerScope(principal));
        if (!info) return { id, status: null, reason: null };
        try {
          await temporal.workflow.getHandle(makeComputeSessionWorkflowId(id)).executeUpdate(checkAndTransitUpdate, { args: [{ reason: `asked by ${principal.userId}` }] });
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError) && !(err instanceof WorkflowUpdateFailedError)) throw err;
        }
        const after = (await store.session(id, undefined)) ?? info;
        return { id, status: after.status, reason: after.status_reason ?? null };
      }));
      res.json({ sessions });
    },
  );
}


/** Starts an admitted session's workflow: its id, search attributes and Web UI summary from the manifest. */
export function startComputeSession(temporal: Client, { taskQueue, input, timings }: { taskQueue: string; input: ComputeSessionInput; timings?: Partial<ComputeTimings> }) {
  return temporal.workflow.start<typeof computeSessionWorkflow>(computeSessionKind.workflowType, {
    ...sessionStartOptions(computeSessionKind, {
      key: [input.sessionId], taskQueue, status: 'PENDING', ownerId: input.ownerId,
      attributes: [{ key: SessionName, value: input.name }],
      summary: `${input.name}: ${input.kernels.length > 1 ? `${input.clusterMode} cluster of ${input.kernels.length}` : 'session'} of ${input.image}`,
      details: `Owner ${input.ownerId}; scaling group ${input.scalingGroup}`,
    }),
    args: [{ ...input, ...(timings ? { timings } : {}) }],
  });
}
