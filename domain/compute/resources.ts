import { z } from 'zod';
import type { ResourceSlots } from './compute';

/**
 * Backend.AI's resource amounts, parsed into `ResourceSlots` and written back in one canonical
 * form. Parsing accepts what Backend.AI clients send:
 * - cpu: cores as a decimal (`"4"`, `"0.5"`, `2`) or millicores (`"500m"`); at most 3 decimals;
 * - memory: bytes as a number or digit string, or a decimal with a binary unit — `k`, `m`, `g`,
 *   `t`, `p`, with or without `b`/`ib`, any case (`"16G"`, `"512M"`, `"10TB"`, `"1.5g"`): 1 G = 2^30 bytes;
 * - gpu: devices as a decimal (`"1"`, `"0.5"`), at most 2 decimals (the column's precision).
 *
 * The canonical form (api answers, error details): cpu in cores as the shortest decimal
 * (`"4"`, `"0.5"`, `"0.125"`), memory with the largest binary unit that divides it exactly
 * (`"16G"`, `"1536M"`, `"100"` for bytes that no unit divides), gpu as the shortest decimal.
 * Every canonical amount parses back to the same slots.
 */
export interface ResourceAmounts {
  cpu: string;
  memory: string;
  gpu: string;
}

/** Far beyond any machine, and inside the columns (integer millicores, bigint bytes) and exact JS integers. */
export const maxCpuMillis = 1_000_000_000;
export const maxMemoryBytes = 2 ** 50;
export const maxGpu = 100_000;

const memoryUnits: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
const canonicalMemoryUnits = [['P', 2 ** 50], ['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const;

export const zeroSlots: ResourceSlots = Object.freeze({ cpuMillis: 0, memoryBytes: 0, gpu: 0 });

/** Millicores, or undefined for anything that is not a cpu amount (negative, NaN, more than 3 decimals). */
export function parseCpu(value: string | number): number | undefined {
  if (typeof value === 'number') return exactScaled(value, 1000, maxCpuMillis);
  const text = value.trim();
  const millis = /^(\d{1,10})m$/.exec(text);
  if (millis) return checked(Number(millis[1]), maxCpuMillis);
  return /^\d{1,10}(\.\d{1,3})?$/.test(text) ? exactScaled(Number(text), 1000, maxCpuMillis) : undefined;
}

/** Bytes, or undefined for anything that is not a memory amount (a fraction of a byte included). */
export function parseMemory(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? checked(value, maxMemoryBytes) : undefined;
  const match = /^(\d{1,16}(?:\.\d{1,6})?)\s*([kmgtp]?)(i?b)?$/i.exec(value.trim());
  if (!match) return undefined;
  const [, amount = '', unit = '', suffix] = match;
  // "12b" is bytes; "12ib" means nothing.
  if (!unit && suffix && suffix.toLowerCase() !== 'b') return undefined;
  const bytes = Number(amount) * memoryUnits[unit.toLowerCase()]!;
  return Number.isSafeInteger(bytes) ? checked(bytes, maxMemoryBytes) : undefined;
}

/** Devices (hundredths at most), or undefined. */
export function parseGpu(value: string | number): number | undefined {
  if (typeof value === 'string' && !/^\d{1,6}(\.\d{1,2})?$/.test(value.trim())) return undefined;
  const hundredths = exactScaled(Number(value), 100, maxGpu * 100);
  return hundredths === undefined ? undefined : hundredths / 100;
}

function exactScaled(value: number, scale: number, max: number): number | undefined {
  if (!Number.isFinite(value) || value < 0) return undefined;
  const scaled = Math.round(value * scale);
  // 0.0005 cores is not a thousandth of anything: refuse rather than round silently.
  if (Math.abs(scaled - value * scale) > 1e-6 * Math.max(1, scale)) return undefined;
  return checked(scaled, max);
}

function checked(value: number, max: number): number | undefined {
  return Number.isSafeInteger(value) && value >= 0 && value <= max ? value : undefined;
}

export function formatCpu(cpuMillis: number): string {
  return decimal(cpuMillis, 1000);
}

export function formatMemory(memoryBytes: number): string {
  for (const [unit, size] of canonicalMemoryUnits) {
    if (memoryBytes >= size && memoryBytes % size === 0) return `${memoryBytes / size}${unit}`;
  }
  return String(memoryBytes);
}

export function formatGpu(gpu: number): string {
  return decimal(Math.round(gpu * 100), 100);
}

/** `units / scale` with no trailing zeros, from integers only (no float noise such as 0.30000000000000004). */
function decimal(units: number, scale: number): string {
  const whole = Math.floor(units / scale);
  const rest = units % scale;
  if (rest === 0) return String(whole);
  const digits = String(scale).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}

export function formatSlots(slots: ResourceSlots): ResourceAmounts {
  return { cpu: formatCpu(slots.cpuMillis), memory: formatMemory(slots.memoryBytes), gpu: formatGpu(slots.gpu) };
}

// gpu is kept in hundredths through arithmetic so sums of 0.1s stay exact.
const gpuHundredths = (gpu: number) => Math.round(gpu * 100);

export function addSlots(a: ResourceSlots, b: ResourceSlots): ResourceSlots {
  return { cpuMillis: a.cpuMillis + b.cpuMillis, memoryBytes: a.memoryBytes + b.memoryBytes, gpu: (gpuHundredths(a.gpu) + gpuHundredths(b.gpu)) / 100 };
}

/** `a - b`, which may be negative (a node used beyond what it declares after it shrank). */
export function subtractSlots(a: ResourceSlots, b: ResourceSlots): ResourceSlots {
  return { cpuMillis: a.cpuMillis - b.cpuMillis, memoryBytes: a.memoryBytes - b.memoryBytes, gpu: (gpuHundredths(a.gpu) - gpuHundredths(b.gpu)) / 100 };
}

export function scaleSlots(slots: ResourceSlots, times: number): ResourceSlots {
  return { cpuMillis: slots.cpuMillis * times, memoryBytes: slots.memoryBytes * times, gpu: (gpuHundredths(slots.gpu) * times) / 100 };
}

export function sumSlots(all: readonly ResourceSlots[]): ResourceSlots {
  return all.reduce(addSlots, zeroSlots);
}

/** Whether `need` fits in `free`, every slot at once. */
export function fits(need: ResourceSlots, free: ResourceSlots): boolean {
  return need.cpuMillis <= free.cpuMillis && need.memoryBytes <= free.memoryBytes && gpuHundredths(need.gpu) <= gpuHundredths(free.gpu);
}

/** The first slot of `need` that `free` cannot hold, for messages and QuotaExceeded's `limit`. */
export function firstShortSlot(need: ResourceSlots, free: ResourceSlots): 'cpu' | 'memory' | 'gpu' | undefined {
  if (need.cpuMillis > free.cpuMillis) return 'cpu';
  if (need.memoryBytes > free.memoryBytes) return 'memory';
  if (gpuHundredths(need.gpu) > gpuHundredths(free.gpu)) return 'gpu';
  return undefined;
}

export function formatSlot(slot: 'cpu' | 'memory' | 'gpu', slots: ResourceSlots): string {
  return formatSlots(slots)[slot];
}

const amountInput = z.union([z.string().max(40), z.number()]);

/** zod fields for the api: an amount in, its number (millicores, bytes, devices) out; a bad one fails naming the field. */
export function amountField(slot: 'cpu' | 'memory' | 'gpu', options: { positive: boolean }) {
  const parse = { cpu: parseCpu, memory: parseMemory, gpu: parseGpu }[slot];
  const expected = {
    cpu: 'cores such as "4", "0.5" or "500m"',
    memory: 'bytes, or an amount with a binary unit such as "16G", "512M", "1.5g", "10TB"',
    gpu: 'devices such as "1" or "0.5" (at most 2 decimals)',
  }[slot];
  return amountInput.transform((value, ctx) => {
    const parsed = parse(value);
    if (parsed === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a ${slot} amount: expected ${expected}` });
      return z.NEVER;
    }
    if (options.positive && parsed <= 0 && slot !== 'gpu') {
      ctx.addIssue({ code: 'custom', message: `${slot} must be more than 0` });
      return z.NEVER;
    }
    return parsed;
  });
}

export const cpuField = amountField('cpu', { positive: true });
export const memoryField = amountField('memory', { positive: true });
export const gpuField = amountField('gpu', { positive: false });

/** The amounts a client writes, every slot required (a node, an image's defaults, a policy). */
export const slotsBody = (options: { positive: boolean }) => z.strictObject({
  cpu: amountField('cpu', options),
  memory: amountField('memory', options),
  gpu: amountField('gpu', { positive: false }).default(0),
}).transform(({ cpu, memory, gpu }): ResourceSlots => ({ cpuMillis: cpu, memoryBytes: memory, gpu }));

/** The canonical amounts of the api's answers, for OpenAPI. */
export const amountsView = z.object({ cpu: z.string(), memory: z.string(), gpu: z.string() });
