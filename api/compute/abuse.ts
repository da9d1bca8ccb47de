import { sessionWorkflowLookup } from './sessionWorkflow';
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { createAbuseStore } from '../../activities/compute/abuseStore';
import { createComputeStore } from '../../activities/compute/store';
import { abuseVerdicts, worstVerdict, type AbusePolicy } from '../../domain/compute/abuse';
import { judgeKernelUsage } from '../../domain/compute/abuseVerdict';
import { kernelUsageUpdate } from '../../domain/compute/compute';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { KernelRouteDeps } from './kernelActions';
import { sessionsBase } from './sessions';

const idParams = z.object({ id: z.uuid() });
const problems = (codes: string) => ({ description: codes, contentType: 'application/problem+json' });

const verdictField = z.enum(abuseVerdicts);
export const abusePolicyView = z.object({
  abuse_cpu_warning_percent: z.number(),
  abuse_cpu_percent: z.number(),
  abuse_memory_percent: z.number(),
  abuse_action: z.enum(['warn', 'terminate']),
});
const kernelFiguresView = z.object({
  status: verdictField,
  cpu: z.object({ used_cores: z.number(), allocated_cores: z.number(), percent: z.number().describe('of the allocated cores'), warning_percent: z.number(), abusing_percent: z.number() }),
  memory: z.object({
    used_bytes: z.number(), allocated_bytes: z.number(), percent: z.number().describe('of the allocated memory'), abusing_percent: z.number(),
    limit_bytes: z.number().nullable().describe('the cgroup\'s limit: under gVisor the allocation plus gVisor\'s own share'),
  }),
  pids: z.object({ current: z.number(), limit: z.number().nullable() }).describe('tasks in the cgroup (under gVisor, its host threads)'),
  sample_seconds: z.number(),
  reasons: z.array(z.string()),
});
export const kernelAbuseView = kernelFiguresView.extend({ kernel_id: z.uuid(), hostname: z.string() });
const reportView = z.object({
  session_id: z.uuid(),
  status: verdictField.describe('the worst kernel\'s'),
  measured_at: z.string(),
  policy: abusePolicyView,
  kernels: z.array(kernelAbuseView.extend({
    node: z.string(),
    last_look: z.object({ status: verdictField, abusing_looks: z.number(), at: z.string() }).nullable().describe('the reconciler\'s last look at this kernel'),
  })),
});

export const presentAbusePolicy = (policy: AbusePolicy) => ({
  abuse_cpu_warning_percent: policy.cpuWarningPercent, abuse_cpu_percent: policy.cpuPercent, abuse_memory_percent: policy.memoryPercent, abuse_action: policy.action,
});

/**
 * The abuse report of a session: each kernel's use, measured now on its node through the
 * session's workflow (two samples a second apart), judged against the owner's policy.
 */
export function registerAbuseRoutes(api: ApiRoutes, deps: KernelRouteDeps): void {
  const store = createComputeStore(deps.pool, deps.compute);
  const sessionFor = sessionWorkflowLookup(store, deps.temporal);
  const abuse = createAbuseStore(deps.pool, deps.compute);

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/abuse-report`,
      summary: 'Resource use of each kernel (CPU in cores and % of its allocation, memory, tasks) judged against the owner\'s policy: ok, warning or abusing',
      tag: 'compute', access: 'user', params: idParams,
      responses: {
        200: { description: 'the figures and thresholds per kernel, and the session\'s worst verdict', schema: reportView },
        404: problems('SessionNotFound'),
        409: problems('InvalidSessionState: not RUNNING'),
        502: problems('KernelFailed: a kernel is not running'),
        503: problems('AgentNotAvailable'),
      },
    },
    async ({ params, principal, res }) => {
      const { info, handle } = await sessionFor(params.id, principal);
      const notRunning = (status: string) => new ApiError('InvalidSessionState', `the session is ${status}: an abuse report needs a RUNNING session`, { current_status: status, allowed_statuses: ['RUNNING'] });
      if (info.status !== 'RUNNING') throw notRunning(info.status);
      const measured = await handle.executeUpdate(kernelUsageUpdate).catch(async (err: unknown) => {
        // Its workflow ended between the read and the update: the row says how by now.
        if (err instanceof WorkflowNotFoundError) throw notRunning((await store.session(params.id, undefined))?.status ?? info.status);
        throw err;
      });
      const [policy, lastLooks] = await Promise.all([abuse.policy(info.owner_id), abuse.lastLooks(params.id)]);
      const kernels = measured.map(({ kernelId, hostname, node, usage }) => {
        const last = lastLooks.get(kernelId);
        return {
          kernel_id: kernelId, hostname, node, ...judgeKernelUsage(usage, info.resources, policy),
          last_look: last ? { status: last.verdict, abusing_looks: last.abusing_looks, at: last.at.toISOString() } : null,
        };
      });
      res.json({
        session_id: params.id, status: worstVerdict(kernels.map((k) => k.status)), measured_at: new Date().toISOString(), policy: presentAbusePolicy(policy), kernels,
      });
    },
  );
}
