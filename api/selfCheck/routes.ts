import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { sessionStartOptions } from '../../domain/shared/kind';
import { selfCheckKind } from '../../domain/selfCheck/kind';
import { checkNames, makeSelfCheckWorkflowId, selfCheckReportQuery, type SelfCheckReport } from '../../domain/selfCheck/selfCheck';
import type { selfCheckWorkflow } from '../../workflows/selfCheck/selfCheck';
import type { ApiMetrics } from '../platform/metrics';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';

interface SelfCheckRouteDeps {
  temporal: Client;
  taskQueue: string;
  temporalUiUrl: string;
  namespace: string;
  metrics: ApiMetrics;
}

const startBody = z
  .strictObject({ checks: z.array(z.enum(checkNames)).min(1).max(checkNames.length).optional() })
  .optional();

const checkResult = z.object({
  name: z.enum(checkNames),
  ok: z.boolean(),
  duration_ms: z.number(),
  detail: z.string(),
  error: z.object({ type: z.string(), message: z.string() }).optional(),
});

const selfCheckView = z.object({
  id: z.uuid(),
  workflow_id: z.string(),
  status: z.enum(['RUNNING', 'PASSED', 'FAILED', 'ABORTED']),
  started_at: z.string().optional(),
  finished_at: z.string().optional(),
  checks: z.array(checkResult),
  web_ui: z.url(),
});

export function registerSelfCheckRoutes(api: ApiRoutes, deps: SelfCheckRouteDeps): void {
  const webUiLink = (workflowId: string) => `${deps.temporalUiUrl}/namespaces/${deps.namespace}/workflows/${encodeURIComponent(workflowId)}`;

  api.route(
    {
      method: 'post', path: '/api/v1/admin/self-check', summary: 'Start the platform self-check (Docker, a container, PostgreSQL, registry)', tag: 'admin', access: 'admin',
      body: startBody,
      responses: { 202: { description: 'started; poll the id', schema: selfCheckView } },
    },
    async ({ body, principal, res }) => {
      const id = randomUUID();
      const start = sessionStartOptions(selfCheckKind, {
        key: [id], taskQueue: deps.taskQueue, status: 'RUNNING', ownerId: principal.userId,
        summary: `Platform self-check requested by ${principal.name}`,
        details: `Checks: ${(body?.checks ?? checkNames).join(', ')}`,
      });
      const { workflowId } = start;
      await deps.temporal.workflow.start<typeof selfCheckWorkflow>(selfCheckKind.workflowType, {
        ...start,
        args: [{ ownerId: principal.userId, checks: body?.checks }],
        // A self-check that cannot finish in five minutes has found its answer.
        workflowExecutionTimeout: '5m',
      });
      deps.metrics.workflowsStarted.inc({ workflow: 'selfCheckWorkflow' });
      res.status(202).location(`/api/v1/admin/self-check/${id}`).json({ id, workflow_id: workflowId, status: 'RUNNING', checks: [], web_ui: webUiLink(workflowId) });
    },
  );

  api.route(
    {
      method: 'get', path: '/api/v1/admin/self-check/:id', summary: 'Status of a self-check, or its report once finished', tag: 'admin', access: 'admin',
      params: z.object({ id: z.uuid() }),
      responses: { 200: { description: 'the self-check', schema: selfCheckView } },
    },
    async ({ params, res }) => {
      const workflowId = makeSelfCheckWorkflowId(params.id);
      const handle = deps.temporal.workflow.getHandle<typeof selfCheckWorkflow>(workflowId);
      let status: string;
      try {
        ({ status: { name: status } } = await handle.describe());
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new ApiError('NotFound', `no self-check ${params.id}`);
        throw err;
      }
      const view = { id: params.id, workflow_id: workflowId, web_ui: webUiLink(workflowId) };
      if (status === 'RUNNING') {
        res.json({ ...view, ...present(await handle.query(selfCheckReportQuery)) });
      } else if (status === 'COMPLETED') {
        res.json({ ...view, ...present(await handle.result()) });
      } else {
        // Terminated, timed out or cancelled: the workflow never wrote a report.
        res.json({ ...view, status: 'ABORTED', checks: [], detail: `workflow ${status.toLowerCase()}` });
      }
    },
  );
}

function present(report: SelfCheckReport) {
  return {
    status: report.status,
    started_at: report.startedAt,
    finished_at: report.finishedAt,
    checks: report.checks.map(({ durationMs, ...rest }) => ({ ...rest, duration_ms: durationMs })),
  };
}
