import { addSlots, fits, firstShortSlot, formatCpu, formatGpu, formatMemory, formatSlots, parseCpu, parseGpu, parseMemory, scaleSlots, slotsBody, subtractSlots, sumSlots } from '../../../domain/compute/resources';
import { createSessionBody } from '../../../domain/compute/params';

const G = 2 ** 30;
const M = 2 ** 20;

describe('parsing Backend.AI amounts', () => {
  it('reads cpu as cores, decimals and millicores', () => {
    expect(parseCpu('4')).toBe(4000);
    expect(parseCpu('0.5')).toBe(500);
    expect(parseCpu('500m')).toBe(500);
    expect(parseCpu(2)).toBe(2000);
    expect(parseCpu('1000')).toBe(1_000_000);
    expect(parseCpu('0.125')).toBe(125);
  });

  it('refuses cpu amounts that are negative, finer than a millicore or not numbers', () => {
    for (const bad of ['-1', '0.0005', 'four', '4 cores', '', '1.5m', '1e3', 'NaN']) expect(parseCpu(bad)).toBeUndefined();
    for (const bad of [-1, 0.0005, Number.NaN, Number.POSITIVE_INFINITY]) expect(parseCpu(bad)).toBeUndefined();
  });

  it('reads memory with binary units in any case, with or without B, and bytes as numbers', () => {
    expect(parseMemory('16G')).toBe(16 * G);
    expect(parseMemory('512M')).toBe(512 * M);
    expect(parseMemory('10TB')).toBe(10 * 2 ** 40);
    expect(parseMemory('1.5g')).toBe(1.5 * G);
    expect(parseMemory('256MiB')).toBe(256 * M);
    expect(parseMemory('64k')).toBe(64 * 1024);
    expect(parseMemory('1024')).toBe(1024);
    expect(parseMemory('1024b')).toBe(1024);
    expect(parseMemory(268435456)).toBe(256 * M);
  });

  it('refuses memory amounts that are fractions of a byte, negative, unknown units or absurdly large', () => {
    for (const bad of ['1.5', '0.3k', '-1G', '16X', 'G', '12ib', '2048P', '16 gigs']) expect(parseMemory(bad)).toBeUndefined();
    expect(parseMemory(1.5)).toBeUndefined();
    expect(parseMemory(-5)).toBeUndefined();
  });

  it('reads gpu as devices with at most two decimals', () => {
    expect(parseGpu('1')).toBe(1);
    expect(parseGpu('0.5')).toBe(0.5);
    expect(parseGpu(0.25)).toBe(0.25);
    expect(parseGpu('0')).toBe(0);
    for (const bad of ['0.125', '-1', 'one', '1g']) expect(parseGpu(bad)).toBeUndefined();
  });
});

describe('the canonical format', () => {
  it('writes cpu as the shortest decimal of cores, memory in the largest exact binary unit, gpu as a decimal', () => {
    expect(formatCpu(4000)).toBe('4');
    expect(formatCpu(500)).toBe('0.5');
    expect(formatCpu(1250)).toBe('1.25');
    expect(formatCpu(5)).toBe('0.005');
    expect(formatMemory(16 * G)).toBe('16G');
    expect(formatMemory(1.5 * G)).toBe('1536M');
    expect(formatMemory(10 * 2 ** 40)).toBe('10T');
    expect(formatMemory(1000)).toBe('1000');
    expect(formatMemory(0)).toBe('0');
    expect(formatGpu(1)).toBe('1');
    expect(formatGpu(0.5)).toBe('0.5');
    expect(formatGpu(0.1 + 0.2)).toBe('0.3');
  });

  it('parses every canonical amount back to the same slots', () => {
    for (const slots of [{ cpuMillis: 4000, memoryBytes: 16 * G, gpu: 1 }, { cpuMillis: 125, memoryBytes: 1536 * M + 7, gpu: 0.25 }, { cpuMillis: 1, memoryBytes: 1, gpu: 0 }]) {
      const { cpu, memory, gpu } = formatSlots(slots);
      expect({ cpuMillis: parseCpu(cpu), memoryBytes: parseMemory(memory), gpu: parseGpu(gpu) }).toEqual(slots);
    }
  });
});

describe('slot arithmetic', () => {
  const a = { cpuMillis: 1500, memoryBytes: 2 * G, gpu: 0.1 };
  const b = { cpuMillis: 500, memoryBytes: G, gpu: 0.2 };

  it('adds, subtracts and scales by cluster size, gpu exactly', () => {
    expect(addSlots(a, b)).toEqual({ cpuMillis: 2000, memoryBytes: 3 * G, gpu: 0.3 });
    expect(subtractSlots(b, a)).toEqual({ cpuMillis: -1000, memoryBytes: -G, gpu: 0.1 });
    expect(scaleSlots(a, 3)).toEqual({ cpuMillis: 4500, memoryBytes: 6 * G, gpu: 0.3 });
    expect(sumSlots([a, b, b])).toEqual({ cpuMillis: 2500, memoryBytes: 4 * G, gpu: 0.5 });
  });

  it('fits only when every slot fits, and names the first that does not', () => {
    expect(fits(b, a)).toBe(false);
    expect(firstShortSlot(b, a)).toBe('gpu');
    expect(fits(a, addSlots(a, b))).toBe(true);
    expect(firstShortSlot(a, b)).toBe('cpu');
    expect(firstShortSlot({ ...b, cpuMillis: 0 }, { ...a, memoryBytes: 0 })).toBe('memory');
    expect(firstShortSlot(b, b)).toBeUndefined();
  });
});

describe('amounts in api bodies', () => {
  it('fails validation naming the field of a bad amount', () => {
    const result = createSessionBody.safeParse({ image: 'python:3.11', resources: { cpu: 'lots', memory: '16G' } });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([['resources.cpu', expect.stringContaining('not a cpu amount')]]);
  });

  it('refuses zero cpu or memory for a session but allows zero in a policy', () => {
    expect(createSessionBody.safeParse({ image: 'python:3.11', resources: { memory: '0' } }).success).toBe(false);
    expect(slotsBody({ positive: false }).parse({ cpu: '0', memory: 0 })).toEqual({ cpuMillis: 0, memoryBytes: 0, gpu: 0 });
    expect(slotsBody({ positive: true }).safeParse({ cpu: '0', memory: '1G' }).success).toBe(false);
  });
});
