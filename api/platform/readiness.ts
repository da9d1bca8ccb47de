import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { createPlatformStore } from './store';

export interface ReadinessDeps {
  temporal: Client;
  pool: Pool;
  docker: Docker;
  registryAddress: string;
}

type Dependency = 'temporal' | 'postgres' | 'docker' | 'registry';
type ReadinessReport = Record<Dependency, { ok: boolean; error?: string }>;

const probeTimeoutMs = 2000;

function withTimeout<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${probeTimeoutMs} ms`)), probeTimeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Asks every dependency at once; a slow one costs at most the probe timeout. */
export async function checkReadiness(deps: ReadinessDeps): Promise<ReadinessReport> {
  const probes: Record<Dependency, () => Promise<unknown>> = {
    temporal: () => deps.temporal.workflowService.getSystemInfo({}),
    postgres: () => createPlatformStore(deps.pool).ping(),
    docker: () => deps.docker.ping(),
    registry: async () => {
      const response = await fetch(`http://${deps.registryAddress}/v2/`, { signal: AbortSignal.timeout(probeTimeoutMs) });
      if (response.status !== 200) throw new Error(`registry answered ${response.status}`);
    },
  };
  const entries = await Promise.all(
    (Object.keys(probes) as Dependency[]).map(async (name) => {
      try {
        await withTimeout(name, probes[name]());
        return [name, { ok: true }] as const;
      } catch (err) {
        return [name, { ok: false, error: err instanceof Error ? err.message : String(err) }] as const;
      }
    }),
  );
  return Object.fromEntries(entries) as ReadinessReport;
}
