import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { findRuntime, makeSessionKey, runtimes, type ExecutionJob, type RuntimeSpec, type SourceFile } from '../../domain/execution/execution';
import { fileNameConflicts, fileNameProblem } from '../../domain/execution/fileNames';
import type { Config } from '../../platform/config';
import type { Executor } from './executors';
import type { ApiMetrics } from '../platform/metrics';
import type { ErrorRequestHandler } from 'express';
import { ApiError, sendProblem, toProblem } from '../platform/problems';
import type { ApiRoutes, HeaderlessClient } from '../platform/routes';

export type ExecutionConfig = Pick<Config,
  'EXECUTION_RUN_TIMEOUT_MS' | 'EXECUTION_MAX_RUN_TIMEOUT_MS' | 'EXECUTION_COMPILE_TIMEOUT_MS' | 'EXECUTION_MAX_COMPILE_TIMEOUT_MS' |
  'EXECUTION_OUTPUT_LIMIT_BYTES' | 'EXECUTION_MEMORY_LIMIT_MB'>;

interface ExecuteRouteDeps {
  config: ExecutionConfig;
  executor: () => Promise<Executor>;
  metrics: ApiMetrics;
}

const maxFiles = 20;
const memoryLimit = z.number().int().min(-1).optional();

/** Paired surrogates are one code point under /u: what is left is half a character. */
const loneSurrogate = /\p{Surrogate}/u;

/**
 * Text handed to the program as it is (stdin, arguments): the runner encodes it as UTF-8, which
 * half a surrogate pair (legal in a JSON string) cannot be.
 */
const programText = (max: number) => z.string().max(max).refine((text) => !loneSurrogate.test(text), 'must be well-formed Unicode (no lone surrogate)');

const fileName = z.string().superRefine((name, ctx) => {
  const problem = fileNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const executeBody = z.object({
  language: z.string().min(1).max(64),
  version: z.string().min(1).max(64).default('*'),
  files: z.array(z.object({
    name: fileName.optional(),
    content: z.string().max(1024 * 1024),
    encoding: z.enum(['utf8', 'base64', 'hex']).default('utf8'),
  })).min(1).max(maxFiles),
  stdin: programText(1024 * 1024).default(''),
  // A NUL would end the argument in the kernel's argv: the program could never see it whole.
  args: z.array(programText(4096).refine((arg) => !arg.includes('\0'), 'must not contain a NUL character')).max(64).default([]),
  compile_timeout: z.number().int().positive().optional(),
  run_timeout: z.number().int().positive().optional(),
  compile_memory_limit: memoryLimit,
  run_memory_limit: memoryLimit,
  /** Our extension (Azure dynamic sessions): executions with the same id share a container. */
  session_id: z.string().regex(/^[\w.:-]{1,128}$/, 'letters, digits, _ . : - (at most 128)').optional(),
});

const stageResult = z.object({
  stdout: z.string(), stderr: z.string(), output: z.string(),
  code: z.number().nullable(), signal: z.string().nullable(), message: z.string().nullable(),
  status: z.enum(['RE', 'SG', 'TO', 'OL', 'EL', 'XX']).nullable(),
  cpu_time: z.number(), wall_time: z.number(), memory: z.number(),
});
const executeResponse = z.object({ language: z.string(), version: z.string(), run: stageResult.optional(), compile: stageResult.optional() });
const runtimeView = z.object({ language: z.string(), version: z.string(), aliases: z.array(z.string()), runtime: z.string().optional() });

/** Piston clients read `message` from an error body: added to the usual problem answer, for /api/v2 only. */
export const pistonProblems: ErrorRequestHandler = (err, _req, res, next) => {
  const known = toProblem(err);
  if (!known) {
    next(err);
    return;
  }
  sendProblem(res, { status: known.status, body: { ...known.body, message: known.body.message ?? known.body.detail } });
};

/** Piston clients put the key in the server URL (Basic) and send their JSON as text/plain. */
const pistonClients: HeaderlessClient = { basicAuth: true, textPlainJson: true };

export function registerExecuteRoutes(api: ApiRoutes, deps: ExecuteRouteDeps): void {
  api.route(
    {
      method: 'get', path: '/api/v2/runtimes', summary: 'Runtimes code can be executed in (Piston v2)', tag: 'execution', access: 'user',
      headerless: pistonClients,
      responses: { 200: { description: 'the runtimes', schema: z.array(runtimeView) } },
    },
    ({ res }) => {
      res.json(runtimes.map(({ language, version, aliases, runtime }) => ({ language, version, aliases, ...(runtime ? { runtime } : {}) })));
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v2/execute', summary: 'Execute code in a sandbox (Piston v2; optional session_id keeps a container)', tag: 'execution', access: 'user',
      headerless: pistonClients,
      body: executeBody,
      responses: {
        200: { description: 'the compile and run results; header X-Sessionflow-Executor names the executor', schema: executeResponse },
        400: { description: 'bad request (ValidationFailed naming the field, e.g. a file name the runner cannot honour; RuntimeNotFound): `message` says why' },
        413: { description: 'PayloadTooLarge: the files, stdin and args would not fit in the execution workflow\'s input' },
        429: { description: 'PoolExhausted: every container is busy; retry after Retry-After seconds' },
        500: { description: 'ExecutionFailed: the runner could not carry out the job (its container is retired)' },
        503: { description: 'ContainerLost: the execution container vanished during the run (it is retired); or DependencyUnavailable: the Docker engine does not answer, retry after Retry-After seconds (executions never fall back to the host)' },
      },
    },
    async ({ body, principal, res }) => {
      const runtime = findRuntime(body.language, body.version);
      if (!runtime) throw new ApiError('RuntimeNotFound', `${body.language}-${body.version} runtime is unknown`);
      const job = toJob(body, runtime, deps.config, principal.userId);
      const executor = await deps.executor();
      res.setHeader('X-Sessionflow-Executor', executor.name);
      res.setHeader('X-Sessionflow-Request-Id', job.requestId);
      const { result, cold } = await executor.execute(job, principal.userId);
      res.setHeader('X-Sessionflow-Cold-Start', String(cold));
      if (executor.name === 'docker') deps.metrics.workflowsStarted.inc({ workflow: 'codeExecutionWorkflow' });
      res.json(result);
    },
  );
}

type ExecuteBody = z.infer<typeof executeBody>;

/** The request resolved against the runtime and the configured defaults and maxima. */
function toJob(body: ExecuteBody, runtime: RuntimeSpec, config: ExecutionConfig, ownerId: string): ExecutionJob {
  const runTimeout = body.run_timeout ?? config.EXECUTION_RUN_TIMEOUT_MS;
  const compileTimeout = body.compile_timeout ?? config.EXECUTION_COMPILE_TIMEOUT_MS;
  if (runTimeout > config.EXECUTION_MAX_RUN_TIMEOUT_MS) reject('run_timeout', `run_timeout cannot exceed ${config.EXECUTION_MAX_RUN_TIMEOUT_MS}`);
  if (compileTimeout > config.EXECUTION_MAX_COMPILE_TIMEOUT_MS) reject('compile_timeout', `compile_timeout cannot exceed ${config.EXECUTION_MAX_COMPILE_TIMEOUT_MS}`);
  const maxMemory = config.EXECUTION_MEMORY_LIMIT_MB * 1024 * 1024;
  const memory = (requested: number | undefined, field: string) => {
    if (requested !== undefined && requested > maxMemory) reject(field, `${field} cannot exceed ${maxMemory}`);
    return requested === undefined || requested < 0 ? -1 : requested;
  };
  const files: SourceFile[] = body.files.map((file, index) => ({
    name: file.name ?? (index === 0 ? runtime.defaultFile : `file${index}.code`),
    content: Buffer.from(file.content, file.encoding === 'utf8' ? 'utf8' : file.encoding).toString('base64'),
  }));
  // After the defaults: an unnamed file takes a name a named one may already have.
  const conflicts = fileNameConflicts(files.map((f) => f.name));
  if (conflicts.length > 0) {
    throw new ApiError('ValidationFailed', 'the files cannot all be written side by side', { errors: conflicts.map(({ index, message }) => ({ field: `body.files.${index}.name`, message })) });
  }
  const job: ExecutionJob = {
    requestId: randomUUID(),
    language: runtime.language,
    version: runtime.version,
    files,
    stdin: body.stdin,
    args: body.args,
    compile: runtime.compile && { command: runtime.compile, timeoutMs: compileTimeout, memoryLimit: memory(body.compile_memory_limit, 'compile_memory_limit') },
    run: { command: runtime.run, timeoutMs: runTimeout, memoryLimit: memory(body.run_memory_limit, 'run_memory_limit') },
    outputLimit: config.EXECUTION_OUTPUT_LIMIT_BYTES,
    sessionKey: body.session_id && makeSessionKey(ownerId, body.session_id),
  };
  const size = Buffer.byteLength(JSON.stringify(job));
  if (size > maxJobBytes) throw new ApiError('PayloadTooLarge', `files (in base64), stdin and args come to ${size} bytes as the execution's input; at most ${maxJobBytes}`);
  return job;
}

/**
 * The job travels as one Temporal payload (the execution workflow's input), and the server
 * refuses a payload past 2 MB by default: a job that would not fit gets 413, not the 500 of a
 * refused workflow start. Only a REQUEST_BODY_LIMIT above 1mb lets a request come this far.
 */
const maxJobBytes = 1536 * 1024;

function reject(field: string, message: string): never {
  throw new ApiError('ValidationFailed', message, { errors: [{ field: `body.${field}`, message }] });
}
