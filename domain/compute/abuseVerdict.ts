import type { AbusePolicy, KernelAbuseFigures, KernelAllocation, KernelUsage } from './abuse';
import { formatCpu, formatMemory } from './resources';

const percentOf = (used: number, allocated: number) => (allocated > 0 ? (used / allocated) * 100 : 0);
const round = (value: number, decimals: number) => Math.round(value * 10 ** decimals) / 10 ** decimals;

/**
 * The verdict on one kernel: abusing when its CPU or memory use reaches the policy's abusing
 * threshold (in % of its allocation), warning when its CPU use reaches the warning threshold,
 * ok otherwise. Judged on the figures as measured; the answer shows them rounded.
 */
export function judgeKernelUsage(usage: KernelUsage, allocation: KernelAllocation, policy: AbusePolicy): KernelAbuseFigures {
  const cpuPercent = percentOf(usage.cpuCores, allocation.cpuMillis / 1000);
  const memoryPercent = percentOf(usage.memoryBytes, allocation.memoryBytes);
  const cores = formatCpu(allocation.cpuMillis);
  const abusing = [
    ...(cpuPercent >= policy.cpuPercent ? [`cpu ${round(cpuPercent, 1)}% of ${cores} cores ≥ ${policy.cpuPercent}%`] : []),
    ...(memoryPercent >= policy.memoryPercent ? [`memory ${round(memoryPercent, 1)}% of ${formatMemory(allocation.memoryBytes)} ≥ ${policy.memoryPercent}%`] : []),
  ];
  const warning = abusing.length === 0 && cpuPercent >= policy.cpuWarningPercent ? [`cpu ${round(cpuPercent, 1)}% of ${cores} cores ≥ ${policy.cpuWarningPercent}% (warning)`] : [];
  return {
    status: abusing.length > 0 ? 'abusing' : warning.length > 0 ? 'warning' : 'ok',
    cpu: { used_cores: round(usage.cpuCores, 3), allocated_cores: allocation.cpuMillis / 1000, percent: round(cpuPercent, 1), warning_percent: policy.cpuWarningPercent, abusing_percent: policy.cpuPercent },
    memory: { used_bytes: usage.memoryBytes, allocated_bytes: allocation.memoryBytes, percent: round(memoryPercent, 1), abusing_percent: policy.memoryPercent, limit_bytes: usage.memoryLimitBytes },
    pids: { current: usage.pids, limit: usage.pidsLimit },
    sample_seconds: round(usage.sampleSeconds, 3),
    reasons: [...abusing, ...warning],
  };
}
