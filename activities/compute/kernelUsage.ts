import type Docker from 'dockerode';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KernelUsage } from '../../domain/compute/abuse';
import { ignoreNotFound } from '../shared/docker';

/** Between the two samples: long enough that a busy kernel's CPU time is seen, short enough for an api answer. */
const sampleMs = 1000;

/**
 * A kernel's resource use, as its engine measures it (the figures `docker stats` shows). Only
 * reads, so a retry is harmless.
 */
export function createKernelUsageActivities(docker: Docker) {
  return {
    /**
     * Two samples of each container's cgroup about a second apart (all containers at once, so a
     * node answers in about a second however many kernels it holds): CPU cores used over the
     * interval, memory and tasks at its end. A container that is gone or not running: null.
     */
    async measureKernels({ containerIds }: { containerIds: string[] }): Promise<Record<string, KernelUsage | null>> {
      const first = await Promise.all(containerIds.map((id) => sample(docker, id)));
      await sleep(sampleMs);
      const second = await Promise.all(containerIds.map((id) => sample(docker, id)));
      return Object.fromEntries(containerIds.map((id, i) => [id, usageBetween(first[i], second[i])]));
    },
  };
}

export type KernelUsageActivities = ReturnType<typeof createKernelUsageActivities>;

interface Sample {
  /** Seconds since the epoch, to the nanosecond the engine gives (as far as a double holds it). */
  at: number;
  cpuNanos: number;
  memoryBytes: number;
  memoryLimitBytes: number | null;
  pids: number;
  pidsLimit: number | null;
}

/** One reading of the engine (`one-shot`: no second sample taken by the engine itself). */
async function sample(docker: Docker, containerId: string): Promise<Sample | undefined> {
  const stats = await ignoreNotFound(docker.getContainer(containerId).stats({ stream: false, 'one-shot': true }));
  // A container that is not running is read at the zero time, with nothing in its cgroup.
  if (!stats || stats.read.startsWith('0001-')) return undefined;
  const memory = stats.memory_stats;
  const fields = memory.stats as Record<string, number | undefined> | undefined;
  // cgroup v1 counts the page cache in usage, v2 names the inactive part otherwise; docker stats leaves it out.
  const inactiveFile = fields?.total_inactive_file ?? fields?.inactive_file ?? 0;
  return {
    at: secondsOf(stats.read),
    cpuNanos: stats.cpu_stats.cpu_usage.total_usage,
    memoryBytes: Math.max(0, (memory.usage ?? 0) - inactiveFile),
    memoryLimitBytes: memory.limit ?? null,
    pids: stats.pids_stats?.current ?? 0,
    pidsLimit: stats.pids_stats?.limit ?? null,
  };
}

function usageBetween(first: Sample | undefined, second: Sample | undefined): KernelUsage | null {
  if (!first || !second || second.at <= first.at) return null;
  const sampleSeconds = second.at - first.at;
  return {
    // A restart between the samples starts the counter again: no use is better than a negative one.
    cpuCores: Math.max(0, second.cpuNanos - first.cpuNanos) / 1e9 / sampleSeconds,
    memoryBytes: second.memoryBytes,
    memoryLimitBytes: second.memoryLimitBytes,
    pids: second.pids,
    pidsLimit: second.pidsLimit,
    sampleSeconds,
  };
}

/** `2026-11-30T06:17:44.008417046Z` → seconds; Date reads only milliseconds, so the fraction is read apart. */
function secondsOf(timestamp: string): number {
  const match = /^(.*?)(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(timestamp);
  if (!match) return Date.parse(timestamp) / 1000;
  return Date.parse(`${match[1]}${match[3]}`) / 1000 + Number(`0.${match[2] ?? '0'}`);
}
