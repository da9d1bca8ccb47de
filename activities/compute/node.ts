// TEMPORARY stub (lead's branch): the node engineer's module replaces it at merge.
import type { ResourceSlots } from '../../domain/compute/compute';

export interface KernelSpec {
  sessionId: string; ownerId: string; kernelId: string; hostname: string; role: 'main' | 'sub'; idx: number; imageReference: string;
  resources: ResourceSlots; env: Record<string, string>; secretId?: string; vfolders: string[]; network?: string; clusterHosts: string[];
  clusterKeyId?: string; bootstrapScript?: string;
}
export interface ComputeNodeActivities {
  pullKernelImage(input: { reference: string }): Promise<{ pulled: boolean }>;
  ensureClusterNetwork(input: { sessionId: string }): Promise<{ network: string }>;
  removeClusterNetwork(input: { sessionId: string }): Promise<void>;
  createKernel(spec: KernelSpec): Promise<{ containerId: string }>;
  kernelBootstrapState(input: { containerId: string }): Promise<{ done: boolean; exitCode?: number; running: boolean }>;
  restartKernel(input: { containerId: string }): Promise<void>;
  removeSessionKernels(input: { sessionId: string }): Promise<void>;
  inspectKernels(input: { containerIds: string[] }): Promise<Record<string, 'running' | 'exited' | 'missing'>>;
}
