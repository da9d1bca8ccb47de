import type Docker from 'dockerode';
import type { Pool } from 'pg';
import { Readable, Writable } from 'node:stream';
import { pack } from 'tar-stream';
import {
  maxListBytes,
  maxListEntries,
  maxUploadFileBytes,
  maxUploadFiles,
  transferChunkBytes,
  type DownloadedFiles,
  type FileEntry,
  type FileListing,
  type UploadedFiles,
} from '../../domain/compute/files';
import { domainFailure, type ErrorCode } from '../../domain/shared/errors';
import { CappedBuffer, execInKernel, type KernelExecOptions } from './kernelExec';
import { kernelFilesSource } from './kernelFilesScript';
import { createFileTransferStore } from './fileStore';

/** A listing answers within a minute; an upload or download of up to hundreds of megabytes gets minutes. */
const listWaitMs = 60_000;
const transferWaitMs = 8 * 60_000;
/** The refusals the kernel's script names (kernelFilesScript.ts); anything else it says is KernelFailed. */
const scriptRefusals: readonly ErrorCode[] = ['PathNotFound', 'PathOutsideWorkDir', 'ValidationFailed', 'TooManyFiles', 'FileTooLarge', 'DownloadTooLarge'];
/** A download's first line says what follows: bounded, so a broken script cannot fill the memory. */
const maxHeaderBytes = 64 * 1024;

/**
 * List, upload and download in a kernel (the session's main kernel), each one `docker exec` of
 * the kernel files script as `work`. The bytes go through PostgreSQL staging rows (fileStore.ts),
 * never through Temporal. Every one may be retried: a listing reads, an upload writes the same
 * files again (all or none each time), a download deletes what an earlier attempt staged first.
 */
export function createKernelFileActivities(docker: Docker, pool: Pool) {
  const transfers = createFileTransferStore(pool);

  return {
    /** Entries of a directory in the kernel, hidden ones only when asked; PathNotFound, PathOutsideWorkDir. */
    async listKernelFiles({ containerId, path, showHidden }: { containerId: string; path: string; showHidden: boolean }): Promise<FileListing> {
      const stdout = new CappedBuffer(maxListBytes + 64 * 1024);
      await runScript(containerId, ['list', path, showHidden ? '1' : '0', String(maxListEntries), String(maxListBytes)], { stdout, waitMs: listWaitMs });
      const listing = JSON.parse(stdout.text()) as { path: string; entries: (Omit<FileEntry, 'modeOctal'> & { mode_octal: string })[]; truncated: boolean };
      return {
        path: listing.path,
        entries: listing.entries.map(({ mode_octal: modeOctal, ...entry }) => ({ ...entry, modeOctal })),
        truncated: listing.truncated,
      };
    },

    /**
     * Writes the upload staged under `transferId` into `path` in the kernel: a tar of the files
     * (members named by their index) on the script's stdin, the names and sizes as its manifest,
     * so it checks everything before it writes anything.
     */
    async uploadKernelFiles({ containerId, sessionId, transferId, path }: { containerId: string; sessionId: string; transferId: string; path: string }): Promise<UploadedFiles> {
      const manifest = await transfers.uploadManifest(transferId, sessionId);
      if (!manifest) throw domainFailure('NotFound', `upload ${transferId} of session ${sessionId} is gone (staged over an hour ago?)`, { transfer_id: transferId });
      const archive = pack();
      void (async () => {
        for (const [index, file] of manifest.entries()) {
          const data = await transfers.part(transferId, file.seq);
          if (!data) throw new Error(`part ${file.seq} of upload ${transferId} is gone`);
          archive.entry({ name: String(index), size: data.length, mode: 0o644 }, data);
        }
        archive.finalize();
      })().catch((err: unknown) => archive.destroy(err instanceof Error ? err : new Error(String(err))));
      const stdout = new CappedBuffer(64 * 1024);
      await runScript(containerId, ['upload', path, JSON.stringify(manifest.map(({ name, size }) => ({ name, size }))), String(maxUploadFiles), String(maxUploadFileBytes)], {
        stdin: Readable.from(archive), stdout, waitMs: transferWaitMs,
      });
      return JSON.parse(stdout.text()) as UploadedFiles;
    },

    /**
     * Stages the bytes of `paths` from the kernel under `transferId`, in chunks of
     * transferChunkBytes: one regular file as it is (unless `archive`), else a tar. Past
     * `maxBytes`, DownloadTooLarge (the script refuses up front; the count here catches files
     * that grow meanwhile).
     */
    async downloadKernelFiles({ containerId, sessionId, transferId, paths, archive, maxBytes }: { containerId: string; sessionId: string; transferId: string; paths: string[]; archive: boolean; maxBytes: number }): Promise<DownloadedFiles> {
      if (!(await transfers.isDownload(transferId, sessionId))) throw domainFailure('NotFound', `download ${transferId} of session ${sessionId} is gone`, { transfer_id: transferId });
      await transfers.clearParts(transferId);
      const staged = new StagedDownload(maxBytes, (seq, data) => transfers.putChunk(transferId, seq, data));
      await runScript(containerId, ['download', archive ? 'tar' : 'auto', String(maxBytes), ...paths], { stdout: staged, waitMs: transferWaitMs });
      if (!staged.header) throw domainFailure('KernelFailed', 'the kernel answered the download without saying what it is');
      return { kind: staged.header.kind, name: staged.header.name, bytes: staged.bytes, chunks: staged.chunks };
    },
  };

  /** The script with its arguments; exit 0 is done, 2 a named refusal, anything else KernelFailed. */
  async function runScript(containerId: string, args: string[], io: Pick<KernelExecOptions, 'stdin' | 'stdout' | 'waitMs'>): Promise<void> {
    const run = await execInKernel(docker, containerId, { cmd: ['python3', '-I', '-S', '-c', kernelFilesSource, ...args], stderrBytes: 16 * 1024, ...io });
    if (run.outcome === 'late') throw domainFailure('KernelFailed', `the kernel did not finish ${args[0]} within ${Math.round(io.waitMs / 1000)} s`);
    const exitCode = await run.exitCode();
    if (exitCode === 0) return;
    const refusal = exitCode === 2 ? parseRefusal(run.stderr) : undefined;
    if (refusal) throw domainFailure(refusal.code, refusal.message, refusal.details);
    const why = run.stderr.trim().split('\n').slice(-3).join(' ');
    throw domainFailure('KernelFailed', `${args[0]} in the kernel failed (exit ${exitCode ?? 'unknown'}): ${why || 'no message'}`);
  }
}

export type KernelFileActivities = ReturnType<typeof createKernelFileActivities>;

function parseRefusal(stderr: string): { code: ErrorCode; message: string; details: Record<string, unknown> } | undefined {
  const line = stderr.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(line) as { error?: string; message?: string; details?: Record<string, unknown> };
    const code = scriptRefusals.find((known) => known === parsed.error);
    return code ? { code, message: parsed.message ?? code, details: parsed.details ?? {} } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A download's stdout: the script's header line (what it is), then the bytes, staged in chunks
 * of transferChunkBytes as they come — each written before the next is taken, so memory holds
 * one chunk. More than `maxBytes` fails the exec with DownloadTooLarge.
 */
class StagedDownload extends Writable {
  header?: { kind: 'file' | 'tar'; name: string };
  bytes = 0;
  chunks = 0;
  private headerText = Buffer.alloc(0);
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxBytes: number, private readonly putChunk: (seq: number, data: Buffer) => Promise<void>) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.take(chunk).then(() => done(), done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.flush().then(() => done(), done);
  }

  private async take(chunk: Buffer): Promise<void> {
    let body = chunk;
    if (!this.header) {
      this.headerText = Buffer.concat([this.headerText, chunk]);
      const newline = this.headerText.indexOf(0x0a);
      if (newline < 0) {
        if (this.headerText.length > maxHeaderBytes) throw new Error('the kernel\'s download header is too long');
        return;
      }
      const header = JSON.parse(this.headerText.subarray(0, newline).toString('utf8')) as { kind: 'file' | 'tar'; name: string };
      this.header = { kind: header.kind === 'file' ? 'file' : 'tar', name: String(header.name) };
      body = this.headerText.subarray(newline + 1);
      this.headerText = Buffer.alloc(0);
    }
    this.bytes += body.length;
    if (this.bytes > this.maxBytes) {
      throw domainFailure('DownloadTooLarge', `the download grew past ${this.maxBytes} bytes`, { bytes: this.bytes, max_bytes: this.maxBytes });
    }
    this.pending.push(body);
    this.pendingBytes += body.length;
    while (this.pendingBytes >= transferChunkBytes) {
      const all = Buffer.concat(this.pending);
      await this.putChunk(this.chunks, all.subarray(0, transferChunkBytes));
      this.chunks += 1;
      this.pending = [all.subarray(transferChunkBytes)];
      this.pendingBytes = all.length - transferChunkBytes;
    }
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    await this.putChunk(this.chunks, Buffer.concat(this.pending));
    this.chunks += 1;
    this.pending = [];
    this.pendingBytes = 0;
  }
}
