import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createComputeStore } from '../../activities/compute/store';
import { completeUpdate, executeUpdate, interruptUpdate, type KernelRunResult } from '../../domain/compute/compute';
import { makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import { textWithoutNul } from '../../domain/compute/params';
import type { computeSessionWorkflow } from '../../workflows/compute/computeSession';
import { ownerScope, type Principal } from '../platform/auth';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { ComputeRouteDeps } from './admin';
import { sessionNotFound, sessionsBase } from './sessions';

const idParams = z.object({ id: z.uuid() });
/** Backend.AI's modes; only `query` (a notebook cell in the kernel's namespace) is served so far. */
const executeModes = ['query', 'batch', 'input', 'continue'] as const;
const supportedModes: readonly string[] = ['query'];
const maxCodeChars = 256 * 1024;
const defaultTimeoutSeconds = 60;
const runIdField = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

const executeBody = z.strictObject({
  mode: z.enum(executeModes).default('query'),
  code: textWithoutNul(maxCodeChars),
  run_id: runIdField.optional(),
  stdin: z.string().max(maxCodeChars, `at most ${maxCodeChars} characters`).optional(),
  /** Seconds; past it the run is interrupted and the answer is ExecutionTimeout. */
  timeout: z.number().min(0.1).max(3600).default(defaultTimeoutSeconds),
});
const interruptBody = z.strictObject({ run_id: runIdField });
const completeBody = z.strictObject({
  code: textWithoutNul(maxCodeChars),
  /** A character offset in code (default: its end). */
  position: z.number().int().min(0).max(maxCodeChars).optional(),
});

const executeView = z.object({
  run_id: z.string(),
  status: z.literal('finished'),
  exit_code: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  result: z.unknown().describe('the value of the last expression, else of `result` when the code assigns it; null when none or not JSON'),
  result_repr: z.string().nullable(),
  truncated: z.boolean(),
  interrupted: z.boolean(),
});

const problems = (codes: string) => ({ description: codes, contentType: 'application/problem+json' });

export interface KernelRouteDeps extends ComputeRouteDeps {
  temporal: Client;
}

/**
 * Working in a session's main kernel: execute (query mode), interrupt a run, complete code.
 * Each is an update on the session's workflow (attributed, and activity for the idle timeout),
 * carried out by the main kernel's runner on its node.
 */
export function registerKernelRoutes(api: ApiRoutes, deps: KernelRouteDeps): void {
  const store = createComputeStore(deps.pool, deps.compute);

  /** The session's workflow, after the owner check (another user's session is a 404). */
  async function sessionFor(id: string, principal: Principal) {
    const info = await store.session(id, ownerScope(principal));
    if (!info) throw sessionNotFound(id);
    return { info, handle: deps.temporal.workflow.getHandle<typeof computeSessionWorkflow>(makeComputeSessionWorkflowId(id)) };
  }

  /** An ended session has no workflow to ask: nothing runs in it. */
  const ended = (id: string, status: string) => new ApiError('InvalidSessionState', `session ${id} has ended (${status})`, { current_status: status });

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/execute`, summary: 'Run code in the main kernel\'s persistent namespace (mode query) and answer with its output and result', tag: 'compute', access: 'user', params: idParams, body: executeBody,
      responses: {
        200: { description: 'the finished run (exit_code 1 and a traceback on stderr when the code raised)', schema: executeView },
        400: problems('ValidationFailed (also a mode other than query: not yet supported)'),
        404: problems('SessionNotFound'),
        408: problems('ExecutionTimeout: interrupted at the timeout; the kernel stays usable'),
        409: problems('InvalidSessionState: not RUNNING, or another run is going on (running_run_id)'),
        502: problems('KernelFailed'),
        503: problems('AgentNotAvailable'),
      },
    },
    async ({ params, body, principal, res }) => {
      if (!supportedModes.includes(body.mode)) {
        throw new ApiError('ValidationFailed', `mode ${body.mode} is not yet supported: use query`, { errors: [{ field: 'body.mode', message: `${body.mode} is not yet supported (supported: ${supportedModes.join(', ')})` }] });
      }
      const { info, handle } = await sessionFor(params.id, principal);
      const runId = body.run_id ?? randomUUID();
      let run: KernelRunResult;
      try {
        run = await handle.executeUpdate(executeUpdate, { args: [{ runId, code: body.code, stdin: body.stdin, timeoutMs: Math.round(body.timeout * 1000) }] });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw ended(params.id, info.status);
        throw err;
      }
      res.json({
        run_id: run.runId, status: run.status, exit_code: run.exitCode, stdout: run.stdout, stderr: run.stderr,
        result: run.result ?? null, result_repr: run.resultRepr, truncated: run.truncated, interrupted: run.interrupted,
      });
    },
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/interrupt`, summary: 'Interrupt a run (KeyboardInterrupt in the kernel; the namespace stays); a finished or unknown run is fine', tag: 'compute', access: 'user', params: idParams, body: interruptBody,
      responses: {
        200: { description: 'running: whether the run still goes on after 5 s (code that catches KeyboardInterrupt)', schema: z.object({ run_id: z.string(), running: z.boolean() }) },
        404: problems('SessionNotFound'),
      },
    },
    async ({ params, body, principal, res }) => {
      const { handle } = await sessionFor(params.id, principal);
      try {
        const { running } = await handle.executeUpdate(interruptUpdate, { args: [{ runId: body.run_id }] });
        res.json({ run_id: body.run_id, running });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        res.json({ run_id: body.run_id, running: false });
      }
    },
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/complete`, summary: 'Completion candidates from the main kernel\'s interpreter at a position of the code', tag: 'compute', access: 'user', params: idParams, body: completeBody,
      responses: {
        200: { description: 'candidates, in the interpreter\'s order', schema: z.object({ candidates: z.array(z.string()) }) },
        404: problems('SessionNotFound'),
        409: problems('InvalidSessionState: not RUNNING'),
      },
    },
    async ({ params, body, principal, res }) => {
      const { info, handle } = await sessionFor(params.id, principal);
      try {
        res.json(await handle.executeUpdate(completeUpdate, { args: [{ code: body.code, position: body.position }] }));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw ended(params.id, info.status);
        throw err;
      }
    },
  );
}
