import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { Counter } from 'prom-client';
import { z } from 'zod';
import {
  canonicalChatId,
  ensureSandboxUpdate,
  execInSandboxUpdate,
  makeSandboxWorkflowId,
  sandboxEvents,
  sandboxExecMaxTimeoutMs,
  stopSandboxUpdate,
  type EnsureSandboxResult,
  type SandboxRecord,
  type SandboxWorkflowInput,
} from '../../domain/sandbox/sandbox';
import { ChatId } from '../../domain/shared/searchAttributes';
import { createSandboxStore, type SandboxStore } from '../../activities/sandbox/store';
import type { sandboxWorkflow } from '../../workflows/sandbox/sandbox';
import { visibleTo, type Principal } from '../platform/auth';
import type { ApiMetrics } from '../platform/metrics';
import { ApiError, toProblem } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import { sandboxKind } from '../../domain/sandbox/kind';
import { sessionStartOptions } from '../../domain/shared/kind';

interface SandboxRouteDeps {
  temporal: Client;
  pool: Pool;
  taskQueue: string;
  ttlSeconds: number;
  /** SANDBOX_MAX_PER_USER: checked by the create itself, so concurrent creates cannot overshoot it. */
  maxPerUser: number;
  metrics: ApiMetrics;
}

const chatParams = z.object({
  chatId: z.string().transform((raw, ctx) => {
    const chatId = canonicalChatId(raw);
    if (!chatId) ctx.addIssue({ code: 'custom', message: 'a chat id is a UUID, hyphenated or as 32 hex digits' });
    return chatId ?? '';
  }),
});

const sandboxStatuses = ['CREATING', 'RUNNING', 'EXPIRED', 'STOPPED'] as const;
const sandboxView = z.object({
  session_id: z.uuid(),
  chat_id: z.uuid(),
  container_id: z.string(),
  status: z.enum(sandboxStatuses),
  created_at: z.string(),
  expires_at: z.string(),
  workflow_id: z.string(),
});
const ensuredView = sandboxView.extend({ reused: z.boolean() });

const execBody = z
  .strictObject({
    language: z.enum(['python', 'shell']).default('python'),
    code: z.string().max(256 * 1024).optional(),
    command: z.array(z.string().max(64 * 1024)).min(1).max(256).optional(),
    stdin: z.string().max(1024 * 1024).optional(),
    timeout_ms: z.number().int().min(1).max(sandboxExecMaxTimeoutMs).default(10_000),
  })
  .refine((body) => (body.code === undefined) !== (body.command === undefined), { message: 'send exactly one of code and command', path: ['code'] });

const execView = z.object({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: z.number().int(),
  timed_out: z.boolean(),
  truncated: z.object({ stdout: z.boolean(), stderr: z.boolean() }),
  duration_ms: z.number(),
});

const interpreters = { python: ['python3', '-c'], shell: ['sh', '-c'] } as const;

/** An update-with-start may land on a run that is just finishing; a new run then takes it. */
const ensureAttempts = 3;

export function registerSandboxRoutes(api: ApiRoutes, deps: SandboxRouteDeps): void {
  const { temporal } = deps;
  const store = createSandboxStore(deps.pool);
  registerSandboxEventMetrics(store, deps.metrics);

  /** The chat's owner; another user's chat is a 404, an admin may act for the owner. */
  async function ownerOf(chatId: string, principal: Principal, mustExist: boolean): Promise<string> {
    const owner = await store.chatOwner(chatId);
    if (owner ? !visibleTo(principal, owner) : mustExist) throw new ApiError('NotFound', `no chat ${chatId}`);
    return owner ?? principal.userId;
  }

  async function ensure(chatId: string, ownerId: string) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await ensureSandbox(temporal, { taskQueue: deps.taskQueue, chatId, ownerId, ttlMs: deps.ttlSeconds * 1000, maxPerUser: deps.maxPerUser });
      } catch (err) {
        if (toProblem(err) || attempt >= ensureAttempts) throw err;
      }
    }
  }

  api.route(
    {
      method: 'put', path: '/api/v1/chats/:chatId/sandbox', summary: 'Ensure the chat has a sandbox: reuse the active one, replace an expired one, or create one', tag: 'sandboxes', access: 'user',
      params: chatParams,
      responses: { 200: { description: 'the active sandbox, reused', schema: ensuredView }, 201: { description: 'a sandbox created now', schema: ensuredView } },
    },
    async ({ params, principal, res }) => {
      const ownerId = await ownerOf(params.chatId, principal, false);
      const { sandbox, reused } = await ensure(params.chatId, ownerId);
      res.status(reused ? 200 : 201).json({ ...present(sandbox), reused });
    },
  );

  api.route(
    {
      method: 'get', path: '/api/v1/chats/:chatId/sandbox', summary: 'The chat\'s current sandbox', tag: 'sandboxes', access: 'user',
      params: chatParams,
      responses: { 200: { description: 'the current sandbox (RUNNING, or EXPIRED until it is stopped)', schema: sandboxView } },
    },
    async ({ params, principal, res }) => {
      await ownerOf(params.chatId, principal, true);
      const sandbox = await store.current(params.chatId);
      if (!sandbox) throw new ApiError('NotFound', `chat ${params.chatId} has no sandbox`);
      res.json(present(sandbox));
    },
  );

  api.route(
    {
      method: 'delete', path: '/api/v1/chats/:chatId/sandbox', summary: 'Stop the chat\'s sandbox (idempotent)', tag: 'sandboxes', access: 'user',
      params: chatParams,
      responses: { 204: { description: 'stopped, or there was none' } },
    },
    async ({ params, principal, res }) => {
      const ownerId = await ownerOf(params.chatId, principal, true);
      try {
        await temporal.workflow.getHandle(makeSandboxWorkflowId(params.chatId)).executeUpdate(stopSandboxUpdate, { args: [{ ownerId }] });
      } catch (err) {
        // No workflow runs for the chat: nothing is left to stop.
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      res.status(204).end();
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/chats/:chatId/sandbox/exec', summary: 'Run code or a command in the chat\'s sandbox (files persist for the sandbox\'s life)', tag: 'sandboxes', access: 'user',
      params: chatParams,
      body: execBody,
      responses: { 200: { description: 'the command ran (see exit_code and timed_out)', schema: execView } },
    },
    async ({ params, body, principal, res }) => {
      const ownerId = await ownerOf(params.chatId, principal, true);
      const command = body.command ?? [...interpreters[body.language], body.code ?? ''];
      let result;
      try {
        result = await temporal.workflow
          .getHandle(makeSandboxWorkflowId(params.chatId))
          .executeUpdate(execInSandboxUpdate, { args: [{ ownerId, command, stdin: body.stdin, timeoutMs: body.timeout_ms }] });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new ApiError('InvalidSessionState', `chat ${params.chatId} has no active sandbox; ensure one first`, { state: 'NONE' });
        throw err;
      }
      res.json({
        stdout: result.stdout, stderr: result.stderr, exit_code: result.exitCode, timed_out: result.timedOut,
        truncated: { stdout: result.stdoutTruncated, stderr: result.stderrTruncated }, duration_ms: result.durationMs,
      });
    },
  );
}

/** Starts the chat's workflow unless one runs already (then the update goes to that one). */
export function sandboxStartOperation(options: { taskQueue: string } & SandboxWorkflowInput): WithStartWorkflowOperation<typeof sandboxWorkflow> {
  const { taskQueue, ...input } = options;
  return new WithStartWorkflowOperation<typeof sandboxWorkflow>(sandboxKind.workflowType, {
    ...sessionStartOptions(sandboxKind, {
      key: [input.chatId], taskQueue, status: 'CREATING', ownerId: input.ownerId,
      attributes: [{ key: ChatId, value: input.chatId }],
      summary: `Sandbox of chat ${input.chatId}`,
      details: `Owner ${input.ownerId}; each sandbox lives ${input.ttlMs / 1000} s from its creation`,
    }),
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/**
 * Update-with-start: ensures through the chat's workflow, starting it when none runs. Temporal
 * runs one workflow per id, so concurrent ensures for a chat meet in one workflow.
 */
export function ensureSandbox(temporal: Client, { maxPerUser, ...options }: { taskQueue: string; maxPerUser?: number } & SandboxWorkflowInput): Promise<EnsureSandboxResult> {
  return temporal.workflow.executeUpdateWithStart(ensureSandboxUpdate, {
    args: [{ ownerId: options.ownerId, ttlMs: options.ttlMs, maxPerUser }],
    startWorkflowOperation: sandboxStartOperation(options),
  });
}

function present(sandbox: SandboxRecord) {
  return {
    session_id: sandbox.sessionId,
    chat_id: sandbox.chatId,
    container_id: sandbox.containerId,
    status: sandbox.status,
    created_at: sandbox.createdAt,
    expires_at: sandbox.expiresAt,
    workflow_id: makeSandboxWorkflowId(sandbox.chatId),
  };
}

/**
 * The seed's events happen in workers; each is a row in sandbox_events, so /metrics counts
 * them across every worker process, read at scrape time.
 */
function registerSandboxEventMetrics(store: SandboxStore, metrics: ApiMetrics): void {
  new Counter({
    name: 'sessionflow_sandbox_events_total',
    help: `Chat sandbox events (${sandboxEvents.join(', ')})`,
    labelNames: ['event'] as const,
    registers: [metrics.registry],
    async collect() {
      const rows = await store.eventCounts();
      this.reset();
      for (const event of sandboxEvents) this.inc({ event }, rows.find((row) => row.event === event)?.n ?? 0);
    },
  });
}
