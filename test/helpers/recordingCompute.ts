import { ApplicationFailure } from '@temporalio/common';
import type { ComputeSessionInput, ExecuteRequest, KernelPlacement } from '../../domain/compute/compute';
import type { ComputeStatus } from '../../domain/compute/status';

/**
 * Stand-ins for the compute session's activities, for workflow tests only: they inject faults
 * (a kernel that will not be made, a bootstrap that fails, no room, a container gone) and record
 * every call and status change. The real ones run in test/integration/compute and test/e2e/compute.
 */
export interface ComputeFaults {
  /** What scheduling answers, attempt by attempt (the last answer repeats): placed, wait or never. */
  schedule?: ('placed' | 'wait' | 'never')[];
  /** Kernels (by hostname) whose create fails for good. */
  failCreate?: string[];
  /** Exit codes of bootstrap scripts by hostname (default 0); `hang` never finishes. */
  bootstrap?: Record<string, number | 'hang'>;
  /** What dependencies look like, attempt by attempt (the last repeats). */
  dependencies?: ('ready' | 'waiting' | 'failed')[];
  /** Milliseconds an execution takes in the kernel. */
  executeMs?: number;
  /** A named failure every execution ends with (ExecutionTimeout, InvalidSessionState). */
  executeFails?: string;
  /** Reading a kernel's logs fails on the node (for good). */
  logsFail?: boolean;
}

export interface Transition {
  from: ComputeStatus;
  to: ComputeStatus;
  reason?: string;
}

export function recordingCompute(input: ComputeSessionInput, nodes: { name: string; taskQueue: string }[], faults: ComputeFaults = {}) {
  const calls: string[] = [];
  const transitions: Transition[] = [];
  /** Containers by id, as the fake nodes hold them. */
  const containers = new Map<string, { node: string; hostname: string; running: boolean; restarts: number }>();
  let scheduleAttempt = 0;
  let dependencyAttempt = 0;
  let woken: string[] = [];
  /** What storeComputeKernelLogs kept, by kernel id. */
  const keptLogs = new Map<string, { lines: { at: string; stream?: string; text: string }[]; truncated: boolean }>();

  const pick = <T>(answers: T[] | undefined, attempt: number, fallback: T): T => (answers?.length ? answers[Math.min(attempt, answers.length - 1)]! : fallback);

  const control = {
    async scheduleComputeSession(): Promise<{ placed: KernelPlacement[] } | { wait: string }> {
      const answer = pick(faults.schedule, scheduleAttempt++, 'placed');
      calls.push(`schedule ${answer}`);
      if (answer === 'never') throw ApplicationFailure.create({ type: 'InsufficientResources', message: 'no node of the group could ever hold 10 kernels', nonRetryable: true });
      if (answer === 'wait') return { wait: 'every node is busy' };
      // single-node: all on the first node; multi-node: round robin.
      return {
        placed: input.kernels.map((kernel, i) => {
          const node = input.clusterMode === 'single-node' ? nodes[0]! : nodes[i % nodes.length]!;
          return { ...kernel, node: node.name, taskQueue: node.taskQueue };
        }),
      };
    },
    async recordComputeTransition({ from, to, reason }: Transition & { sessionId: string; at: number }): Promise<void> {
      const last = transitions.at(-1);
      if (last && last.from === from && last.to === to) return;
      transitions.push({ from, to, ...(reason ? { reason } : {}) });
    },
    async setComputeKernelContainer({ kernelId, containerId }: { kernelId: string; containerId: string }): Promise<void> {
      calls.push(`container ${kernelId.slice(0, 4)} ${containerId}`);
    },
    async computeDependencyOutcome(): Promise<'ready' | 'waiting' | { failed: string; status: string }> {
      const answer = pick(faults.dependencies, dependencyAttempt++, 'ready');
      return answer === 'failed' ? { failed: 'dep-1', status: 'ERROR' } : answer;
    },
    async computeSessionsToWake(): Promise<string[]> {
      calls.push('wake');
      return woken;
    },
    async modifyComputeSession({ change }: { sessionId: string; change: { name?: string; priority?: number; idleTimeoutSeconds?: number } }): Promise<void> {
      if (change.name === 'taken') throw ApplicationFailure.create({ type: 'SessionNameTaken', message: 'you have a live session named taken', nonRetryable: true });
      calls.push(`modify ${JSON.stringify(change)}`);
    },
    async storeComputeKernelLogs({ logs }: { sessionId: string; logs: { kernelId: string; hostname: string; lines: { at: string; text: string }[]; truncated: boolean }[] }): Promise<void> {
      calls.push(`keep logs ${logs.map((k) => k.hostname).join(',') || 'none'}`);
      for (const k of logs) keptLogs.set(k.kernelId, { lines: k.lines, truncated: k.truncated });
    },
    async ensureClusterKeyPair({ sessionId }: { sessionId: string }): Promise<{ keyId: string }> {
      calls.push('key pair');
      return { keyId: sessionId };
    },
  };

  function nodeActivities(node: string) {
    return {
      async pullKernelImage({ reference }: { reference: string }) {
        calls.push(`${node}: pull ${reference}`);
        return { pulled: true };
      },
      async ensureClusterNetwork({ sessionId }: { sessionId: string }) {
        calls.push(`${node}: network`);
        return { network: `net-${sessionId.slice(0, 8)}` };
      },
      async removeClusterNetwork() {
        calls.push(`${node}: remove network`);
      },
      async createKernel({ hostname, network, clusterHosts, clusterKeyId }: { hostname: string; network?: string; clusterHosts: string[]; clusterKeyId?: string }) {
        calls.push(`${node}: create ${hostname}${network ? ` on ${network}` : ''} hosts=${clusterHosts.join(',')}${clusterKeyId ? ' with key' : ''}`);
        if (faults.failCreate?.includes(hostname)) throw ApplicationFailure.create({ type: 'ImageNotFound', message: `no image for ${hostname}`, nonRetryable: true });
        const containerId = `c-${node}-${hostname}`;
        containers.set(containerId, { node, hostname, running: true, restarts: 0 });
        return { containerId };
      },
      async kernelBootstrapState({ containerId }: { containerId: string }) {
        const container = containers.get(containerId);
        const exit = faults.bootstrap?.[container?.hostname ?? ''] ?? 0;
        if (exit === 'hang') {
          // As the real one does: it waits on the node before it answers "not yet".
          await new Promise((resolve) => setTimeout(resolve, 200));
          return { done: false, running: container?.running ?? false };
        }
        return { done: true, exitCode: exit, running: container?.running ?? false };
      },
      async restartKernel({ containerId }: { containerId: string }) {
        calls.push(`${node}: restart ${containers.get(containerId)?.hostname}`);
        containers.get(containerId)!.restarts++;
      },
      async removeSessionKernels() {
        const mine = [...containers].filter(([, c]) => c.node === node);
        calls.push(`${node}: remove ${mine.map(([, c]) => c.hostname).sort().join(',') || 'nothing'}`);
        for (const [id] of mine) containers.delete(id);
      },
      async executeInKernel({ containerId, runId, code, stdin }: ExecuteRequest & { containerId: string }) {
        calls.push(`${node}: execute ${runId} in ${containers.get(containerId)?.hostname}`);
        if (faults.executeMs) await new Promise((resolve) => setTimeout(resolve, faults.executeMs));
        if (faults.executeFails) throw ApplicationFailure.create({ type: faults.executeFails, message: `the kernel says ${faults.executeFails}`, nonRetryable: true });
        return { runId, status: 'finished' as const, exitCode: 0, stdout: `ran ${code}${stdin ? ` with ${stdin}` : ''}`, stderr: '', result: code.length, resultRepr: String(code.length), truncated: false, interrupted: false };
      },
      async interruptKernelRun({ containerId, runId }: { containerId: string; runId: string }) {
        calls.push(`${node}: interrupt ${runId} in ${containers.get(containerId)?.hostname}`);
        return { runId, running: false };
      },
      async completeInKernel({ code }: { containerId: string; code: string; position?: number }) {
        calls.push(`${node}: complete ${code}`);
        return { candidates: [`${code}_candidate`] };
      },
      async kernelLogs({ containerIds, since, until, tailBytes }: { containerIds: string[]; since?: number; until?: number; tailBytes: number }) {
        calls.push(`${node}: logs ${containerIds.map((id) => containers.get(id)?.hostname ?? 'gone').join(',')}${since !== undefined ? ` since ${since}` : ''}${until !== undefined ? ` until ${until}` : ''} cap ${tailBytes}`);
        if (faults.logsFail) throw ApplicationFailure.create({ type: 'Error', message: 'the engine does not answer', nonRetryable: true });
        return Object.fromEntries(containerIds.map((id) => {
          const container = containers.get(id);
          const lines = container ? [{ at: '2026-01-01T00:00:00.000000001Z', stream: 'stdout' as const, text: `hello from ${container.hostname}` }] : [];
          return [id, { lines, truncated: false, missing: !container }];
        }));
      },
      async inspectKernels({ containerIds }: { containerIds: string[] }) {
        return Object.fromEntries(containerIds.map((id) => [id, containers.get(id)?.running ? 'running' : containers.has(id) ? 'exited' : 'missing']));
      },
    };
  }

  return {
    calls,
    transitions,
    containers,
    keptLogs,
    control,
    nodeActivities,
    statuses: () => transitions.map((t) => t.to),
    wakeOnEnd: (ids: string[]) => {
      woken = ids;
    },
  };
}
