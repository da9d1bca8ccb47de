import type { ClusterMode, KernelPlacement, KernelPlan, ResourceSlots } from './compute';
import { fits, formatSlots, scaleSlots, subtractSlots } from './resources';

/** A node as the scheduler sees it: what it declares, what live sessions hold on it, and whether it may take more. */
export interface NodeView {
  name: string;
  taskQueue: string;
  capacity: ResourceSlots;
  used: ResourceSlots;
  /** Heartbeat newer than COMPUTE_NODE_DEAD_AFTER_SECONDS. */
  alive: boolean;
  /** An admin may stop new kernels going to a node without taking it away. */
  schedulable: boolean;
}

export interface PlacementRequest {
  mode: ClusterMode;
  kernels: readonly KernelPlan[];
  /** Per kernel. */
  resources: ResourceSlots;
  nodes: readonly NodeView[];
}

export type PlacementResult = { placed: KernelPlacement[] } | { wait: string } | { never: string };

/**
 * Where a session's kernels go.
 * - single-node: every kernel on one node, the best fit — the node with the least room left
 *   after it (room as the sum of the free shares of cpu, memory and gpu), ties by name — so
 *   big nodes stay free for big sessions.
 * - multi-node: one kernel per node, each kernel on the node with the most room left among
 *   those the session does not use yet, ties by name: a multi-node cluster never doubles up on
 *   a node (Backend.AI's meaning, and seed 3.3: a cluster of 10 on 3 nodes cannot be made).
 *
 * Only live, schedulable nodes take kernels. `never` when the nodes given, each empty (by its
 * declared capacity), alive or not, could not hold the session: waiting cannot help, the
 * request is InsufficientResources. `wait` when it would fit once other sessions end, a
 * node comes back or an admin makes one schedulable again.
 */
export function placeKernels(request: PlacementRequest): PlacementResult {
  const { mode, kernels, resources, nodes } = request;
  if (kernels.length === 0) return { placed: [] };
  const never = neverFits(request);
  if (never) return { never };

  const candidates = nodes.filter((node) => node.alive && node.schedulable);
  if (mode === 'single-node') {
    const total = scaleSlots(resources, kernels.length);
    const best = candidates
      .map((node) => ({ node, room: roomAfter(node, total) }))
      .filter(({ room }) => room !== undefined)
      .sort((a, b) => a.room! - b.room! || byName(a.node, b.node))[0];
    if (!best) return { wait: `no live schedulable node has ${describe(total)} free now` };
    return { placed: kernels.map((kernel) => ({ ...kernel, node: best.node.name, taskQueue: best.node.taskQueue })) };
  }

  const taken = new Set<string>();
  const placed: KernelPlacement[] = [];
  for (const kernel of kernels) {
    const best = candidates
      .filter((node) => !taken.has(node.name))
      .map((node) => ({ node, room: roomAfter(node, resources) }))
      .filter(({ room }) => room !== undefined)
      .sort((a, b) => b.room! - a.room! || byName(a.node, b.node))[0];
    if (!best) return { wait: `${placed.length} of ${kernels.length} kernels fit on distinct live schedulable nodes now (each needs ${describe(resources)})` };
    taken.add(best.node.name);
    placed.push({ ...kernel, node: best.node.name, taskQueue: best.node.taskQueue });
  }
  return { placed };
}

function neverFits({ mode, kernels, resources, nodes }: PlacementRequest): string | undefined {
  if (nodes.length === 0) return 'the scaling group has no node';
  if (mode === 'single-node') {
    const total = scaleSlots(resources, kernels.length);
    if (!nodes.some((node) => fits(total, node.capacity))) {
      return `no node of the scaling group can hold ${describe(total)} (${kernels.length} kernel${kernels.length > 1 ? 's' : ''} on one node)`;
    }
    return undefined;
  }
  const able = nodes.filter((node) => fits(resources, node.capacity)).length;
  if (able < kernels.length) {
    return `a multi-node cluster of ${kernels.length} needs as many nodes that can each hold ${describe(resources)}; the scaling group has ${able}`;
  }
  return undefined;
}

/** The free share left on the node after `need`, summed over its slots; undefined when `need` does not fit. */
function roomAfter(node: NodeView, need: ResourceSlots): number | undefined {
  const left = subtractSlots(subtractSlots(node.capacity, node.used), need);
  if (!fits({ cpuMillis: 0, memoryBytes: 0, gpu: 0 }, left)) return undefined;
  const share = (free: number, capacity: number) => (capacity > 0 ? free / capacity : 0);
  return share(left.cpuMillis, node.capacity.cpuMillis) + share(left.memoryBytes, node.capacity.memoryBytes) + share(left.gpu, node.capacity.gpu);
}

const byName = (a: NodeView, b: NodeView) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function describe(slots: ResourceSlots): string {
  const { cpu, memory, gpu } = formatSlots(slots);
  return `cpu ${cpu}, memory ${memory}${slots.gpu > 0 ? `, gpu ${gpu}` : ''}`;
}
