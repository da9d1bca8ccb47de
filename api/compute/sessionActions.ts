import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { z } from 'zod';
import { createComputeStore, type ComputeStore } from '../../activities/compute/store';
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
import { createSessionBody, createFromTemplateBody, sessionNameField } from '../../domain/compute/params';
import { mergeTemplate } from '../../domain/compute/templates';
import { sessionStartOptions } from '../../domain/shared/kind';
import { SessionName } from '../../domain/shared/searchAttributes';
import type { computeSessionWorkflow } from '../../workflows/compute/computeSession';
import { ownerScope, type Principal } from '../platform/auth';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import { sessionInfoView, presentSessionInfo } from './sessions';

export interface ComputeActionDeps {
  temporal: Client;
  pool: Pool;
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
const modifyBody = z
  .strictObject({
    name: sessionNameField.optional(),
    priority: z.number().int().min(-100).max(100).optional(),
    idle_timeout: z.number().int().min(0).max(30 * 24 * 3600).optional(),
  })
  .refine((body) => Object.keys(body).length > 0, { message: 'send at least one of name, priority, idle_timeout', path: ['name'] });
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
  const store = createComputeStore(deps.pool);

  async function create(principal: Principal, body: z.infer<typeof createSessionBody>, res: import('express').Response) {
    const admitted = await store.admitSession({ ownerId: principal.userId, body });
    try {
      await start(admitted);
    } catch (err) {
      await store.markStartFailed(admitted.sessionId, `the workflow could not be started: ${(err as Error).message}`);
      throw err;
    }
    if (!body.enqueue_only) {
      await temporal.workflow.getHandle(makeComputeSessionWorkflowId(admitted.sessionId)).executeUpdate(awaitStartUpdate, { args: [{ timeoutMs: deps.createWaitSeconds * 1000 }] });
    }
    const info = await store.session(admitted.sessionId, undefined);
    res.status(201).json(presentSessionInfo(info!));
  }

  function start(input: ComputeSessionInput) {
    return temporal.workflow.start<typeof computeSessionWorkflow>(computeSessionKind.workflowType, {
      ...sessionStartOptions(computeSessionKind, {
        key: [input.sessionId], taskQueue: deps.taskQueue, status: 'PENDING', ownerId: input.ownerId,
        attributes: [{ key: SessionName, value: input.name }],
        summary: `${input.name}: ${input.kernels.length > 1 ? `${input.clusterMode} cluster of ${input.kernels.length}` : 'session'} of ${input.image}`,
        details: `Owner ${input.ownerId}; scaling group ${input.scalingGroup}`,
      }),
      args: [{ ...input, ...(deps.timings ? { timings: deps.timings } : {}) }],
    });
  }

  /** The session's workflow, after the owner check (another user's session is a 404). */
  async function sessionFor(id: string, principal: Principal) {
    const info = await store.session(id, ownerScope(principal));
    if (!info) throw new ApiError('NotFound', `no session ${id}`);
    return { info, handle: temporal.workflow.getHandle<typeof computeSessionWorkflow>(makeComputeSessionWorkflowId(id)) };
  }

  /** An update to an ended session's workflow finds none running: the read model's answer stands. */
  async function updateOrCurrent<T>(id: string, principal: Principal, send: (handle: ReturnType<typeof temporal.workflow.getHandle>) => Promise<T>, endedProblem?: () => never) {
    const { info, handle } = await sessionFor(id, principal);
    try {
      await send(handle);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) && !(err instanceof WorkflowUpdateFailedError && err.message.includes('completed'))) throw err;
      if (endedProblem) endedProblem();
    }
    return (await store.session(id, undefined)) ?? info;
  }

  const sessionAnswer = { description: 'the session after the action', schema: sessionInfoView };

  api.route(
    {
      method: 'post', path: '/api/v1/sessions', summary: 'Create a session (or a cluster) from parameters; waits until RUNNING unless enqueue_only', tag: 'compute', access: 'user', body: createSessionBody,
      responses: {
        201: { description: 'the session: RUNNING, or PENDING/CREATING with enqueue_only or a long wait, or ERROR with the reason', schema: sessionInfoView },
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
      method: 'post', path: '/api/v1/sessions/from-template', summary: 'Create a session from a template, with overrides deep-merged into its parameters', tag: 'compute', access: 'user', body: createFromTemplateBody,
      responses: { 201: { description: 'as POST /api/v1/sessions', schema: sessionInfoView }, 404: problems('TemplateNotFound, ImageNotFound') },
    },
    async ({ body, principal, res }) => {
      const template = await store.template(body.template_id);
      if (!template) throw new ApiError('TemplateNotFound', `no session template ${body.template_id}`, { template_id: body.template_id });
      const merged = createSessionBody.safeParse(mergeTemplate(template.params, body.overrides ?? {}));
      if (!merged.success) throw ApiError.validation(merged.error, 'body');
      await create(principal, merged.data, res);
    },
  );

  api.route(
    {
      method: 'patch', path: '/api/v1/sessions/:id', summary: 'Modify a session: name, priority, idle timeout (seconds; 0 turns it off)', tag: 'compute', access: 'user', params: idParams, body: modifyBody,
      responses: { 200: sessionAnswer, 409: problems('SessionNameTaken, InvalidSessionState (ended)') },
    },
    async ({ params, body, principal, res }) => {
      const info = await updateOrCurrent(params.id, principal, (handle) => handle.executeUpdate(modifyUpdate, { args: [{ name: body.name, priority: body.priority, idleTimeoutSeconds: body.idle_timeout }] }), () => endedSession(params.id));
      res.json(presentSessionInfo(info));
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/sessions/:id/rename', summary: 'Rename a session (unique among your live sessions)', tag: 'compute', access: 'user', params: idParams, body: renameBody,
      responses: { 200: sessionAnswer, 409: problems('SessionNameTaken, InvalidSessionState (ended)') },
    },
    async ({ params, body, principal, res }) => {
      const info = await updateOrCurrent(params.id, principal, (handle) => handle.executeUpdate(modifyUpdate, { args: [{ name: body.name }] }), () => endedSession(params.id));
      res.json(presentSessionInfo(info));
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/sessions/:id/restart', summary: 'Restart every kernel of a RUNNING session (vfolder data and files kept)', tag: 'compute', access: 'user', params: idParams,
      responses: { 200: sessionAnswer, 409: problems('InvalidSessionState (with current_status)') },
    },
    async ({ params, principal, res }) => {
      const info = await updateOrCurrent(params.id, principal, (handle) => handle.executeUpdate(restartUpdate), () => endedSession(params.id));
      res.json(presentSessionInfo(info));
    },
  );

  api.route(
    {
      method: 'delete', path: '/api/v1/sessions/:id', summary: 'Destroy a session (idempotent); forced=true also while its kernels are being made, recursive=true also the sessions depending on it', tag: 'compute', access: 'user', params: idParams, query: destroyQuery,
      responses: { 200: sessionAnswer, 409: problems('InvalidSessionState: being created and not forced') },
    },
    async ({ params, query, principal, res }) => {
      const { info } = await sessionFor(params.id, principal);
      if (query.recursive) {
        // Dependents first: they wait on this session, and its end would cancel them anyway.
        for (const dependent of await store.dependentsOf(params.id)) {
          await updateOrCurrent(dependent, principal, (handle) => handle.executeUpdate(destroyUpdate, { args: [{ forced: query.forced, reason: `destroyed with ${info.name}, which it depends on` }] }));
        }
      }
      const after = await updateOrCurrent(params.id, principal, (handle) => handle.executeUpdate(destroyUpdate, { args: [{ forced: query.forced, reason: 'destroyed by its owner' }] }));
      res.json(presentSessionInfo(after));
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

function endedSession(id: string): never {
  throw new ApiError('InvalidSessionState', `session ${id} has ended`, { current_status: 'TERMINATED' });
}

export type { ComputeStore };
