import { sessionEnded, sessionWorkflowLookup } from './sessionWorkflow';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createComputeStore } from '../../activities/compute/store';
import { completeUpdate, executeModes, executeUpdate, interruptUpdate, logsUpdate, type KernelLogs, type KernelRunResult } from '../../domain/compute/compute';
import { textWithoutNul } from '../../domain/compute/params';
import { isFinalComputeStatus } from '../../domain/compute/status';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { ComputeRouteDeps } from './admin';
import { sessionsBase } from './sessions';

const idParams = z.object({ id: z.uuid() });
const maxCodeChars = 256 * 1024;
const defaultTimeoutSeconds = 60;
const runIdField = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');
const command = z.string().min(1).max(64 * 1024).refine((text) => !text.includes('\u0000'), 'must not contain NUL');

const executeBody = z.strictObject({
  mode: z.enum(executeModes).default('query').describe('query: a cell in the namespace; batch: build then exec commands in the shell; input: a line for a run waiting for input; continue: what comes next of a run'),
  code: textWithoutNul(maxCodeChars).optional().describe('query: the cell; batch: the exec command unless options.exec; input: the line'),
  run_id: runIdField.optional().describe('made by the server when absent (query, batch); required by input and continue'),
  stdin: z.string().max(maxCodeChars, `at most ${maxCodeChars} characters`).optional().describe('fed up front (EOF after it); without it input() answers waiting-input'),
  options: z.strictObject({ build: command.optional(), exec: command.optional() }).optional().describe('batch only'),
  /** Seconds; past it the run is interrupted and the answer is ExecutionTimeout. */
  timeout: z.number().min(0.1).max(3600).default(defaultTimeoutSeconds),
  wait: z.number().min(0).max(3600).optional().describe('seconds this request waits for the run\'s next answer before answering continued (default: until it comes)'),
}).superRefine((body, ctx) => {
  const missing = (field: string, why: string) => ctx.addIssue({ code: 'custom', path: [field], message: why });
  if ((body.mode === 'query' || body.mode === 'input') && body.code === undefined) missing('code', `mode ${body.mode} needs code`);
  if (body.mode === 'batch' && body.code === undefined && body.options?.exec === undefined) missing('code', 'mode batch needs code or options.exec');
  if ((body.mode === 'input' || body.mode === 'continue') && body.run_id === undefined) missing('run_id', `mode ${body.mode} needs the run_id of the run`);
  if (body.options !== undefined && body.mode !== 'batch') missing('options', 'options are for mode batch');
});
const interruptBody = z.strictObject({ run_id: runIdField });
const completeBody = z.strictObject({
  code: textWithoutNul(maxCodeChars),
  /** A character offset in code (default: its end). */
  position: z.number().int().min(0).max(maxCodeChars).optional(),
});

const executeView = z.object({
  run_id: z.string(),
  status: z.enum(['finished', 'waiting-input', 'continued']).describe('waiting-input: the code called input() (its prompt ends stdout), answer with mode input; continued: the run goes on, ask with mode continue'),
  exit_code: z.number().nullable().describe('null until finished'),
  stdout: z.string(),
  stderr: z.string(),
  result: z.unknown().describe('the value of the last expression, else of `result` when the code assigns it; null when none or not JSON'),
  result_repr: z.string().nullable(),
  truncated: z.boolean(),
  interrupted: z.boolean(),
});

/** ISO 8601; one without an offset is UTC (the seed writes `2024-01-01T00:00:00`). */
const isoTime = z.iso.datetime({ offset: true, local: true }).transform((text) => Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(text) ? text : `${text}Z`));
const logsQuery = z.object({
  kernel_id: z.uuid().optional(),
  since: isoTime.optional().describe('ISO 8601: lines from then on'),
  until: isoTime.optional().describe('ISO 8601: lines up to then'),
});
const logsView = z.array(z.object({
  kernel_id: z.uuid(),
  hostname: z.string(),
  lines: z.array(z.object({ at: z.string().describe('the engine\'s timestamp (RFC 3339, nanoseconds)'), stream: z.enum(['stdout', 'stderr']).optional(), text: z.string() })),
  truncated: z.boolean().describe('older lines were left out (256 KiB per kernel while it runs, 64 KiB kept at its end)'),
}));

/** A log line's engine timestamp in epoch ms (the engine writes nanoseconds; Date reads milliseconds). */
const lineMs = (at: string) => Date.parse(at.replace(/(\.\d{3})\d+/, '$1'));

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

  const sessionFor = sessionWorkflowLookup(store, deps.temporal);
  const ended = sessionEnded;

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/execute`, summary: 'Run code in the main kernel (a cell in its persistent namespace, or batch commands), feed a run input, or follow it; answers with the output since the last answer', tag: 'compute', access: 'user', params: idParams, body: executeBody,
      responses: {
        200: { description: 'the run\'s next answer (finished: exit_code 1 and a traceback on stderr when the code raised)', schema: executeView },
        400: problems('ValidationFailed'),
        404: problems('SessionNotFound; RunNotFound (input, continue: no such run in the kernel)'),
        408: problems('ExecutionTimeout: interrupted at the timeout; the kernel stays usable'),
        409: problems('InvalidSessionState: not RUNNING, or another run is going on (running_run_id); RunNotWaitingInput'),
        502: problems('KernelFailed'),
        503: problems('AgentNotAvailable'),
      },
    },
    async ({ params, body, principal, res }) => {
      const { info, handle } = await sessionFor(params.id, principal);
      const runId = body.run_id ?? randomUUID();
      let run: KernelRunResult;
      try {
        run = await handle.executeUpdate(executeUpdate, {
          args: [{
            mode: body.mode, runId, code: body.code ?? '', build: body.options?.build, exec: body.options?.exec, stdin: body.stdin,
            timeoutMs: Math.round(body.timeout * 1000), waitMs: body.wait === undefined ? undefined : Math.round(body.wait * 1000), requestId: randomUUID(),
          }],
        });
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

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/logs`, summary: 'Container logs of the session\'s kernels (stdout and stderr, timestamped), each labelled; an ended session\'s come from what was kept at its end', tag: 'compute', access: 'user', params: idParams, query: logsQuery,
      responses: {
        200: { description: 'per kernel (the one asked for, else all), the lines oldest first', schema: logsView },
        400: problems('ValidationFailed: a time that is not ISO 8601, or since after until'),
        404: problems('SessionNotFound; NotFound: no such kernel in the session'),
        409: problems('InvalidSessionState: its kernels are not made yet'),
        502: problems('KernelFailed'),
        503: problems('AgentNotAvailable'),
      },
    },
    async ({ params, query, principal, res }) => {
      if (query.since !== undefined && query.until !== undefined && query.since > query.until) {
        throw new ApiError('ValidationFailed', 'since is after until', { errors: [{ field: 'query.since', message: 'must not be after until' }] });
      }
      const { info, handle } = await sessionFor(params.id, principal);
      if (query.kernel_id !== undefined && !info.kernels.some((k) => k.id === query.kernel_id)) {
        throw new ApiError('NotFound', `session ${params.id} has no kernel ${query.kernel_id}`, { kernel_id: query.kernel_id });
      }
      let logs: KernelLogs[] | undefined;
      if (!isFinalComputeStatus(info.status)) {
        try {
          // Docker counts since/until in seconds (fractions allowed).
          logs = await handle.executeUpdate(logsUpdate, { args: [{ kernelId: query.kernel_id, since: query.since === undefined ? undefined : query.since / 1000, until: query.until === undefined ? undefined : query.until / 1000 }] });
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      logs ??= await keptLogs(params.id, info.kernels.filter((k) => query.kernel_id === undefined || k.id === query.kernel_id), query);
      res.json(logs.map((k) => ({ kernel_id: k.kernelId, hostname: k.hostname, lines: k.lines, truncated: k.truncated })));
    },
  );

  /** An ended session's logs: what was kept at its end, filtered here as the engine would. */
  async function keptLogs(sessionId: string, kernels: { id: string; hostname: string }[], { since, until }: { since?: number; until?: number }): Promise<KernelLogs[]> {
    const kept = await store.storedKernelLogs(sessionId);
    return kernels.map((k) => {
      const logs = kept.get(k.id);
      const lines = (logs?.lines ?? []).filter((line) => (since === undefined || lineMs(line.at) >= since) && (until === undefined || lineMs(line.at) <= until));
      return { kernelId: k.id, hostname: k.hostname, lines, truncated: logs?.truncated ?? false };
    });
  }
}
