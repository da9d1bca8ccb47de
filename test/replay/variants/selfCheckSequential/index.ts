// The negative control for replay: a plausible refactor of selfCheckWorkflow — probes run one
// after another instead of together — that changes the command sequence. Replaying a recorded
// history against it must fail with a determinism error, proving the replay check bites.
import { proxyActivities } from '@temporalio/workflow';
import type { SelfCheckActivities } from '../../../../activities/selfCheck/probes';
import type { CheckResult, SelfCheckInput, SelfCheckReport } from '../../../../domain/selfCheck/selfCheck';

const probes = proxyActivities<SelfCheckActivities>({ startToCloseTimeout: '60s' });

export async function selfCheckWorkflow(_input: SelfCheckInput): Promise<SelfCheckReport> {
  const probeId = 'sequential';
  const checks: CheckResult[] = [];
  checks.push({ name: 'registry', ok: true, ...(await probes.pushAndDeleteProbeImage({ probeId })) });
  checks.push({ name: 'docker', ok: true, ...(await probes.pingDocker()) });
  return { status: 'PASSED', startedAt: new Date().toISOString(), checks };
}
