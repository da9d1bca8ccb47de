import type Docker from 'dockerode';
import type { KernelUsage } from '../../domain/compute/abuse';
import { ignoreNotFound } from '../shared/docker';

/**
 * A kernel's resource use, as its engine measures it (the figures `docker stats` shows). Only
 * reads, so a retry is harmless.
 */
export function createKernelUsageActivities(docker: Docker) {
  return {
    /**
     * Each container's use over two consecutive samples of its cgroup by the engine, about a
     * second apart (all containers at once, so a node answers in one to two seconds however
     * many kernels it holds): CPU cores used over the interval, memory and tasks at its end. A
     * container that is gone or not running: null.
     */
    async measureKernels({ containerIds }: { containerIds: string[] }): Promise<Record<string, KernelUsage | null>> {
      return Object.fromEntries(await Promise.all(containerIds.map(async (id) => [id, await measure(docker, id)] as const)));
    },
  };
}

export type KernelUsageActivities = ReturnType<typeof createKernelUsageActivities>;

/**
 * Without streaming (and without `one-shot`), the engine answers with two samples of its stats
 * collector, which samples every second: the latest (`read`, `cpu_stats`) and the one before
 * (`preread`, `precpu_stats`). Asked one-shot twice instead, each answer waits for the
 * collector's next sample anyway.
 */
async function measure(docker: Docker, containerId: string): Promise<KernelUsage | null> {
  const stats = await ignoreNotFound(docker.getContainer(containerId).stats({ stream: false }));
  // A container that is not running is answered at the zero time, with nothing in its cgroup.
  if (!stats || stats.read.startsWith('0001-') || !stats.preread || stats.preread.startsWith('0001-')) return null;
  const sampleSeconds = secondsOf(stats.read) - secondsOf(stats.preread);
  if (!(sampleSeconds > 0)) return null;
  const memory = stats.memory_stats;
  const fields = memory.stats as Record<string, number | undefined> | undefined;
  // cgroup v1 counts the page cache in usage (v2 names its inactive part otherwise); docker stats leaves it out.
  const inactiveFile = fields?.total_inactive_file ?? fields?.inactive_file ?? 0;
  return {
    // A restart between the samples starts the counter again: no use is better than a negative one.
    cpuCores: Math.max(0, stats.cpu_stats.cpu_usage.total_usage - stats.precpu_stats.cpu_usage.total_usage) / 1e9 / sampleSeconds,
    memoryBytes: Math.max(0, (memory.usage ?? 0) - inactiveFile),
    memoryLimitBytes: memory.limit ?? null,
    pids: stats.pids_stats?.current ?? 0,
    pidsLimit: stats.pids_stats?.limit ?? null,
    sampleSeconds,
  };
}

/** `2026-11-30T06:17:44.008417046Z` → seconds; Date reads only milliseconds, so the fraction is read apart. */
function secondsOf(timestamp: string): number {
  const match = /^(.*?)(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(timestamp);
  if (!match) return Date.parse(timestamp) / 1000;
  return Date.parse(`${match[1]}${match[3]}`) / 1000 + Number(`0.${match[2] ?? '0'}`);
}
