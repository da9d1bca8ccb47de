import type { KernelPlan, ResourceSlots } from '../../../domain/compute/compute';
import { placeKernels, type NodeView } from '../../../domain/compute/placement';

const G = 2 ** 30;
const slots = (cores: number, gib: number, gpu = 0): ResourceSlots => ({ cpuMillis: cores * 1000, memoryBytes: gib * G, gpu });
const kernels = (n: number): KernelPlan[] => Array.from({ length: n }, (_, i) => (i === 0
  ? { kernelId: `k${i}`, role: 'main', idx: 1, hostname: 'main1' }
  : { kernelId: `k${i}`, role: 'sub', idx: i, hostname: `sub${i}` }));
const node = (name: string, capacity: ResourceSlots, used = slots(0, 0), extra: Partial<NodeView> = {}): NodeView => ({
  name, taskQueue: `node/${name}`, capacity, used, alive: true, schedulable: true, ...extra,
});
const nodesOf = (result: ReturnType<typeof placeKernels>) => ('placed' in result ? result.placed.map((k) => k.node) : result);

describe('single-node placement', () => {
  it('puts every kernel on one node, the one with the least room left that fits', () => {
    const result = placeKernels({
      mode: 'single-node', kernels: kernels(2), resources: slots(1, 1),
      nodes: [node('big', slots(16, 64)), node('small', slots(4, 8)), node('tiny', slots(1, 1))],
    });
    expect(nodesOf(result)).toEqual(['small', 'small']);
    expect('placed' in result && result.placed[1]).toEqual({ kernelId: 'k1', role: 'sub', idx: 1, hostname: 'sub1', node: 'small', taskQueue: 'node/small' });
  });

  it('counts what other sessions use, and breaks ties by name', () => {
    const result = placeKernels({ mode: 'single-node', kernels: kernels(1), resources: slots(2, 2), nodes: [node('b', slots(4, 4)), node('a', slots(4, 4)), node('c', slots(4, 4), slots(3, 0))] });
    expect(nodesOf(result)).toEqual(['a']);
  });

  it('waits when only used room is missing, and never when no node could hold the whole cluster', () => {
    const nodes = [node('a', slots(4, 8), slots(3, 0)), node('b', slots(4, 8), slots(0, 7))];
    expect(placeKernels({ mode: 'single-node', kernels: kernels(2), resources: slots(2, 2), nodes })).toEqual({ wait: expect.stringContaining('cpu 4, memory 4G') });
    expect(placeKernels({ mode: 'single-node', kernels: kernels(3), resources: slots(2, 2), nodes })).toEqual({ never: expect.stringContaining('3 kernels on one node') });
    expect(placeKernels({ mode: 'single-node', kernels: kernels(1), resources: slots(1, 1, 1), nodes })).toEqual({ never: expect.stringContaining('gpu 1') });
  });

  it('skips dead and unschedulable nodes, waiting for them rather than refusing', () => {
    const nodes = [node('dead', slots(8, 8), undefined, { alive: false }), node('drained', slots(8, 8), undefined, { schedulable: false }), node('live', slots(1, 1))];
    expect(nodesOf(placeKernels({ mode: 'single-node', kernels: kernels(1), resources: slots(1, 1), nodes }))).toEqual(['live']);
    expect(placeKernels({ mode: 'single-node', kernels: kernels(1), resources: slots(4, 4), nodes })).toHaveProperty('wait');
  });

  it('never places anything in a scaling group without nodes', () => {
    expect(placeKernels({ mode: 'single-node', kernels: kernels(1), resources: slots(1, 1), nodes: [] })).toEqual({ never: 'the scaling group has no node' });
  });
});

describe('multi-node placement', () => {
  it('spreads the kernels one per node, the roomiest first', () => {
    const result = placeKernels({
      mode: 'multi-node', kernels: kernels(3), resources: slots(1, 1),
      nodes: [node('a', slots(4, 4)), node('b', slots(8, 8)), node('c', slots(4, 4), slots(2, 2)), node('d', slots(2, 2))],
    });
    expect(nodesOf(result)).toEqual(['b', 'a', 'd']);
  });

  it('never makes a cluster larger than the nodes that could each hold a kernel (seed 3.3: 10 on 3 nodes)', () => {
    const nodes = [node('a', slots(64, 64)), node('b', slots(64, 64)), node('c', slots(64, 64))];
    expect(placeKernels({ mode: 'multi-node', kernels: kernels(10), resources: slots(1, 1), nodes })).toEqual({ never: expect.stringContaining('the scaling group has 3') });
    expect(placeKernels({ mode: 'multi-node', kernels: kernels(3), resources: slots(1, 1), nodes: [...nodes.slice(0, 2), node('c', slots(1, 0.5))] })).toHaveProperty('never');
  });

  it('waits while a node it needs is full, dead or unschedulable', () => {
    const full = [node('a', slots(4, 4)), node('b', slots(4, 4), slots(4, 0))];
    expect(placeKernels({ mode: 'multi-node', kernels: kernels(2), resources: slots(1, 1), nodes: full })).toEqual({ wait: expect.stringContaining('1 of 2 kernels') });
    const dead = [node('a', slots(4, 4)), node('b', slots(4, 4), undefined, { alive: false })];
    expect(placeKernels({ mode: 'multi-node', kernels: kernels(2), resources: slots(1, 1), nodes: dead })).toHaveProperty('wait');
  });
});
