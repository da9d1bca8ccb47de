import { ActivityFailure, proxyActivities, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import type { SelfCheckActivities } from '../../activities/selfCheck/probes';
import { selfCheckKind } from '../../domain/selfCheck/kind';
import { describeFailure } from '../../domain/shared/failures';
import { upsertStatus } from '../shared/status';
import { checkNames, selfCheckReportQuery, type CheckName, type CheckOutcome, type CheckResult, type SelfCheckInput, type SelfCheckReport } from '../../domain/selfCheck/selfCheck';

// Each probe is quick; a stalled daemon is what a self-check exists to reveal, so fail it
// within a minute and retry only twice: the report must come back, not hang.
const probes = proxyActivities<SelfCheckActivities>({
  startToCloseTimeout: '60s',
  retry: { maximumAttempts: 3, initialInterval: '500ms', backoffCoefficient: 2 },
});

const runProbe: Record<CheckName, (probeId: string) => Promise<CheckOutcome>> = {
  docker: () => probes.pingDocker(),
  container: (probeId) => probes.runProbeContainer({ probeId }),
  database: (probeId) => probes.roundTripProbeRow({ probeId }),
  registry: (probeId) => probes.pushAndDeleteProbeImage({ probeId }),
};

/**
 * Check every piece of real infrastructure at once and report each result with its
 * duration. A failed probe fails its line of the report, not the workflow.
 */
export async function selfCheckWorkflow(input: SelfCheckInput): Promise<SelfCheckReport> {
  const report: SelfCheckReport = { status: 'RUNNING', startedAt: new Date().toISOString(), checks: [] };
  setHandler(selfCheckReportQuery, () => report);

  // The probe id names the container, row and image tag, so a retried probe finds (and
  // replaces) what an earlier attempt left instead of creating a second one.
  const probeId = workflowInfo().workflowId.replace(/[^a-zA-Z0-9-]/g, '-');
  const wanted = input.checks?.length ? checkNames.filter((name) => input.checks?.includes(name)) : checkNames;

  report.checks = await Promise.all(wanted.map((name) => check(name, () => runProbe[name](probeId))));

  report.status = report.checks.every((c) => c.ok) ? 'PASSED' : 'FAILED';
  report.finishedAt = new Date().toISOString();
  // The api sets SessionKind, OwnerId and SessionStatus=RUNNING at start; the outcome is ours.
  upsertStatus(selfCheckKind, report.status);
  setCurrentDetails(describe(report));
  return report;
}

async function check(name: CheckName, probe: () => Promise<CheckOutcome>): Promise<CheckResult> {
  const started = Date.now(); // workflow time: deterministic on replay
  try {
    const { detail, durationMs } = await probe();
    return { name, ok: true, durationMs, detail };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    return { name, ok: false, durationMs: Date.now() - started, detail: 'probe failed', error: describeFailure(err) };
  }
}

function describe(report: SelfCheckReport): string {
  const lines = report.checks.map((c) => `- ${c.ok ? 'ok' : 'FAILED'} **${c.name}** ${c.durationMs} ms: ${c.error?.message ?? c.detail}`);
  return [`Self-check ${report.status}`, ...lines].join('\n');
}
