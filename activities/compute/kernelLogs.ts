import type Docker from 'dockerode';
import type { KernelLogLine } from '../../domain/compute/compute';
import { ignoreNotFound } from '../shared/docker';

/** The engine is asked for at most this many of the newest lines: bounds what a node reads for a very chatty kernel. */
const tailLines = 20_000;

export interface ContainerLogs {
  lines: KernelLogLine[];
  /** Older lines were left out (the byte cap or the engine's tail). */
  truncated: boolean;
  /** The container is gone: nothing to read. */
  missing: boolean;
}

/**
 * A kernel's container log as the engine keeps it (json-file, bounded at creation): stdout and
 * stderr, each line with the engine's timestamp. Reading changes nothing, so a retry is harmless.
 */
export function createKernelLogActivities(docker: Docker) {
  return {
    /** since/until in epoch seconds (fractions allowed); the newest lines within `tailBytes` of text per container. */
    async kernelLogs({ containerIds, since, until, tailBytes }: { containerIds: string[]; since?: number; until?: number; tailBytes: number }): Promise<Record<string, ContainerLogs>> {
      const entries = await Promise.all(containerIds.map(async (id) => [id, await readLogs(docker, id, { since, until, tailBytes })] as const));
      return Object.fromEntries(entries);
    },
  };
}

export type KernelLogActivities = ReturnType<typeof createKernelLogActivities>;

async function readLogs(docker: Docker, containerId: string, { since, until, tailBytes }: { since?: number; until?: number; tailBytes: number }): Promise<ContainerLogs> {
  const raw = await ignoreNotFound(docker.getContainer(containerId).logs({
    follow: false, stdout: true, stderr: true, timestamps: true, tail: tailLines,
    ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}),
  }) as Promise<Buffer>);
  if (!raw) return { lines: [], truncated: false, missing: true };
  const lines = parseFrames(raw);
  const kept = newestWithin(lines, tailBytes);
  return { lines: kept, truncated: kept.length < lines.length || lines.length >= tailLines, missing: false };
}

/**
 * A non-TTY container's log comes in frames of an 8-byte header (stream, size) and the text:
 * each line starts with its RFC 3339 timestamp. A line the engine split across frames (over
 * 16 KiB) is joined again per stream.
 */
export function parseFrames(buffer: Buffer): KernelLogLine[] {
  const lines: KernelLogLine[] = [];
  const pending: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const stream = buffer[offset] === 2 ? 'stderr' : 'stdout';
    const size = buffer.readUInt32BE(offset + 4);
    pending[stream] += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
    let newline: number;
    while ((newline = pending[stream].indexOf('\n')) >= 0) {
      lines.push(lineOf(pending[stream].slice(0, newline), stream));
      pending[stream] = pending[stream].slice(newline + 1);
    }
  }
  for (const stream of ['stdout', 'stderr'] as const) if (pending[stream]) lines.push(lineOf(pending[stream], stream));
  return lines;
}

function lineOf(raw: string, stream: 'stdout' | 'stderr'): KernelLogLine {
  const space = raw.indexOf(' ');
  const stamp = space > 0 ? raw.slice(0, space) : '';
  if (!/^\d{4}-\d{2}-\d{2}T/.test(stamp)) return { at: '', stream, text: raw };
  return { at: stamp, stream, text: raw.slice(space + 1) };
}

/** The newest lines whose text fits in `limit` bytes (a single line longer than the limit is cut to it). */
export function newestWithin(lines: KernelLogLine[], limit: number): KernelLogLine[] {
  const kept: KernelLogLine[] = [];
  let size = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const bytes = Buffer.byteLength(line.text) + line.at.length + 1;
    if (size + bytes > limit) {
      if (kept.length === 0) kept.push({ ...line, text: Buffer.from(line.text).subarray(-Math.max(0, limit - line.at.length - 1)).toString('utf8') });
      break;
    }
    kept.push(line);
    size += bytes;
  }
  return kept.reverse();
}
