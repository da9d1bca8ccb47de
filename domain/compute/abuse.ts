/**
 * Abuse of a kernel's share: how much of its allocation a kernel uses, measured by its engine,
 * judged against its owner's resource policy (judgeKernelUsage, in abuseVerdict.ts: this module
 * stays free of zod, as the session workflow imports it). A cgroup caps a kernel's CPU at its
 * allocation, so "over its share" means at or near 100 % of it; sustained means at two
 * consecutive looks of the reconciler (abusingLooksToAct), not one sample.
 */
export const abuseActions = ['warn', 'terminate'] as const;
export type AbuseAction = (typeof abuseActions)[number];

export const abuseVerdicts = ['ok', 'warning', 'abusing'] as const;
export type AbuseVerdict = (typeof abuseVerdicts)[number];

/** Thresholds in % of the kernel's allocation, and what the reconciler does to a kernel that keeps abusing. */
export interface AbusePolicy {
  /** CPU use at or above this: warning. */
  cpuWarningPercent: number;
  /** CPU use at or above this: abusing. */
  cpuPercent: number;
  /** Memory use at or above this: abusing. */
  memoryPercent: number;
  action: AbuseAction;
}

/** What a policy without settings of its own gets (the COMPUTE_DEFAULT_ABUSE_* defaults). */
export const defaultAbusePolicy: AbusePolicy = Object.freeze({ cpuWarningPercent: 80, cpuPercent: 95, memoryPercent: 95, action: 'warn' });

/** Consecutive looks at which a kernel is abusing before the reconciler applies the owner's action. */
export const abusingLooksToAct = 2;

/** Reason of a session the reconciler ends for abuse (its status_reason, and the history's). */
export const abuseReason = 'abuse';

/**
 * One kernel's use as its engine measured it (the node activity measureKernels): two samples of
 * the container's cgroup about a second apart.
 */
export interface KernelUsage {
  /** CPU time used per second of the sample: 1 is one core busy all along. */
  cpuCores: number;
  /** The cgroup's memory use without the inactive page cache (as `docker stats` counts it). */
  memoryBytes: number;
  /** The cgroup's limit: under gVisor the kernel's allocation plus gVisor's own share. */
  memoryLimitBytes: number | null;
  /** Tasks in the cgroup (under gVisor, its host threads, not the kernel's processes) and their limit. */
  pids: number;
  pidsLimit: number | null;
  /** Seconds between the two samples. */
  sampleSeconds: number;
}

/** What a kernel may use: its share of the session's resources. */
export interface KernelAllocation {
  cpuMillis: number;
  memoryBytes: number;
}

/** A kernel's figures, thresholds and verdict, as the api answers them and the database keeps them. */
export interface KernelAbuseFigures {
  status: AbuseVerdict;
  cpu: { used_cores: number; allocated_cores: number; percent: number; warning_percent: number; abusing_percent: number };
  memory: { used_bytes: number; allocated_bytes: number; percent: number; abusing_percent: number; limit_bytes: number | null };
  pids: { current: number; limit: number | null };
  sample_seconds: number;
  /** Why the verdict is not ok, one phrase per threshold reached. */
  reasons: string[];
}

/** A session's verdict is its worst kernel's (ok for a session without kernels). */
export function worstVerdict(verdicts: readonly AbuseVerdict[]): AbuseVerdict {
  return verdicts.reduce<AbuseVerdict>((worst, verdict) => (abuseVerdicts.indexOf(verdict) > abuseVerdicts.indexOf(worst) ? verdict : worst), 'ok');
}

/**
 * Consecutive looks at which a kernel has been abusing, this one included. A look is known by
 * its id: the same look applied again (a retried activity) counts once.
 */
export function abusingLooksAfter(previous: { looks: number; lookId: string } | undefined, verdict: AbuseVerdict, lookId: string): number {
  if (previous && previous.lookId === lookId) return previous.looks;
  return verdict === 'abusing' ? (previous?.looks ?? 0) + 1 : 0;
}

/** A kernel found abusing, named. */
export type KernelAbuseRecord = KernelAbuseFigures & { kernel_id: string; hostname: string };

/**
 * What the reconciler found when it acts on a session: the kernels abusing at the last
 * `looks` consecutive looks, with their figures. Kept in the status history (terminate) or on
 * the session (warn).
 */
export interface AbuseFinding {
  action: AbuseAction;
  looks: number;
  kernels: KernelAbuseRecord[];
}

/** One line for people: the Web UI's details of the session, the warning's message. */
export function describeAbuse(finding: AbuseFinding): string {
  const kernels = finding.kernels.map((kernel) => `kernel ${kernel.hostname}: ${kernel.reasons.join(', ')}`).join('; ');
  return `${finding.action === 'terminate' ? 'terminated for abuse' : 'abuse warning'} after ${finding.looks} consecutive looks — ${kernels}`;
}
