import {
  abusingLooksAfter,
  defaultAbusePolicy,
  describeAbuse,
  worstVerdict,
  type AbusePolicy,
  type KernelUsage,
} from '../../../domain/compute/abuse';
import { judgeKernelUsage } from '../../../domain/compute/abuseVerdict';

const M = 2 ** 20;
/** A quarter of a core and 256M, as the e2e test's session has. */
const allocation = { cpuMillis: 250, memoryBytes: 256 * M };
const usage = (cpuCores: number, memoryBytes = 20 * M): KernelUsage => ({ cpuCores, memoryBytes, memoryLimitBytes: 1312 * M, pids: 42, pidsLimit: 32_896, sampleSeconds: 1.0214 });

describe('judging a kernel\'s use against its owner\'s policy', () => {
  it('is ok when idle, with the figures in % of the allocation and the thresholds used', () => {
    expect(judgeKernelUsage(usage(0.002), allocation, defaultAbusePolicy)).toEqual({
      status: 'ok',
      cpu: { used_cores: 0.002, allocated_cores: 0.25, percent: 0.8, warning_percent: 80, abusing_percent: 95 },
      memory: { used_bytes: 20 * M, allocated_bytes: 256 * M, percent: 7.8, abusing_percent: 95, limit_bytes: 1312 * M },
      pids: { current: 42, limit: 32_896 },
      sample_seconds: 1.021,
      reasons: [],
    });
  });

  it('warns from the warning threshold of CPU and says abusing from the abusing one, both inclusive', () => {
    const at = (percent: number) => judgeKernelUsage(usage((0.25 * percent) / 100), allocation, defaultAbusePolicy);
    expect(at(79.9).status).toBe('ok');
    expect(at(80).status).toBe('warning');
    expect(at(80).reasons).toEqual(['cpu 80% of 0.25 cores ≥ 80% (warning)']);
    expect(at(94.9).status).toBe('warning');
    expect(at(95).status).toBe('abusing');
    // A busy loop under a cgroup capped at the allocation (measured: 98.7% of 0.25 cores).
    expect(judgeKernelUsage(usage(0.2467), allocation, defaultAbusePolicy)).toMatchObject({ status: 'abusing', cpu: { percent: 98.7 }, reasons: ['cpu 98.7% of 0.25 cores ≥ 95%'] });
  });

  it('says abusing when memory reaches its threshold, whatever the CPU, and names every threshold reached', () => {
    expect(judgeKernelUsage(usage(0, 250 * M), allocation, defaultAbusePolicy)).toMatchObject({ status: 'abusing', memory: { percent: 97.7 }, reasons: ['memory 97.7% of 256M ≥ 95%'] });
    expect(judgeKernelUsage(usage(0.25, 250 * M), allocation, defaultAbusePolicy).reasons).toEqual(['cpu 100% of 0.25 cores ≥ 95%', 'memory 97.7% of 256M ≥ 95%']);
    // Memory has no warning threshold: just under the abusing one is ok.
    expect(judgeKernelUsage(usage(0, 243 * M), allocation, defaultAbusePolicy).status).toBe('ok');
  });

  it('follows the owner\'s own thresholds', () => {
    const strict: AbusePolicy = { cpuWarningPercent: 10, cpuPercent: 50, memoryPercent: 20, action: 'terminate' };
    expect(judgeKernelUsage(usage(0.03), allocation, strict)).toMatchObject({ status: 'warning', cpu: { warning_percent: 10, abusing_percent: 50 } });
    expect(judgeKernelUsage(usage(0.13), allocation, strict).status).toBe('abusing');
    expect(judgeKernelUsage(usage(0, 60 * M), allocation, strict).status).toBe('abusing');
  });

  it('counts per allocation, not per core: the same use is abusing on a quarter core and ok on two', () => {
    expect(judgeKernelUsage(usage(0.24), allocation, defaultAbusePolicy).status).toBe('abusing');
    expect(judgeKernelUsage(usage(0.24), { cpuMillis: 2000, memoryBytes: 256 * M }, defaultAbusePolicy).status).toBe('ok');
  });
});

describe('a session\'s verdict', () => {
  it('is its worst kernel\'s, ok without kernels', () => {
    expect(worstVerdict(['ok', 'abusing', 'warning'])).toBe('abusing');
    expect(worstVerdict(['ok', 'warning'])).toBe('warning');
    expect(worstVerdict([])).toBe('ok');
  });
});

describe('consecutive abusing looks', () => {
  it('count up while abusing and start again at any other verdict', () => {
    const first = abusingLooksAfter(undefined, 'abusing', 'look-1');
    expect(first).toBe(1);
    const second = abusingLooksAfter({ looks: first, lookId: 'look-1' }, 'abusing', 'look-2');
    expect(second).toBe(2);
    expect(abusingLooksAfter({ looks: second, lookId: 'look-2' }, 'warning', 'look-3')).toBe(0);
    expect(abusingLooksAfter({ looks: 0, lookId: 'look-3' }, 'abusing', 'look-4')).toBe(1);
  });

  it('count a look applied again (a retried activity) once', () => {
    expect(abusingLooksAfter({ looks: 1, lookId: 'look-1' }, 'abusing', 'look-1')).toBe(1);
    expect(abusingLooksAfter({ looks: 2, lookId: 'look-2' }, 'abusing', 'look-2')).toBe(2);
  });
});

describe('the one-line description', () => {
  it('names the action, the looks and each abusing kernel\'s reasons', () => {
    const figures = judgeKernelUsage(usage(0.25), allocation, defaultAbusePolicy);
    expect(describeAbuse({ action: 'terminate', looks: 2, kernels: [{ kernel_id: 'k', hostname: 'main1', ...figures }] }))
      .toBe('terminated for abuse after 2 consecutive looks — kernel main1: cpu 100% of 0.25 cores ≥ 95%');
  });
});
