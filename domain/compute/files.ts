import { defineUpdate } from '@temporalio/workflow';

/**
 * Files of a session's main kernel: list, upload, download (seed 000 actions 13-16). Every path
 * is confined to the home of `work`, as the kernel resolves it (symlinks followed inside the
 * container). File bytes never travel through Temporal: the api and the node exchange them
 * through PostgreSQL staging rows (compute_file_transfers), and the updates carry only ids and
 * small answers.
 */

/** The kernel's work directory: relative paths start here, and no path may lead out of it. */
export const kernelWorkDir = '/home/work';
/** Backend.AI's limits on one upload: files per request, bytes per file. */
export const maxUploadFiles = 20;
export const maxUploadFileBytes = 1024 * 1024;
/** A listing answers at most this many entries (and this many bytes of JSON), marked truncated beyond: it travels through the history. */
export const maxListEntries = 2000;
export const maxListBytes = 512 * 1024;
/** A download is staged in rows of this size. */
export const transferChunkBytes = 1024 * 1024;
/** Staging rows older than an hour are deleted by the retention sweep: what a crashed api left behind. */
export const fileTransferRetentionDays = 1 / 24;
/** Longest path the api takes (Linux's PATH_MAX), and longest name of one path segment (NAME_MAX, bytes). */
export const maxPathChars = 4096;
const maxSegmentBytes = 255;
/** Longest file name of an upload, subdirectories included. */
const maxUploadNameChars = 1024;

export type FileEntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface FileEntry {
  name: string;
  type: FileEntryType;
  /** Bytes (of the link itself for a symlink). */
  size: number;
  /** As `ls -l` writes it, e.g. `-rw-r--r--`, and the permission bits in octal, e.g. `0644`. */
  mode: string;
  modeOctal: string;
  /** ISO 8601, UTC. */
  mtime: string;
  /** Where a symlink points, as written in it. */
  target?: string;
}

export interface FileListing {
  /** The directory listed, resolved in the kernel. */
  path: string;
  entries: FileEntry[];
  /** More entries than a listing holds: the first ones by name are answered. */
  truncated: boolean;
}

export interface ListFilesRequest {
  path: string;
  showHidden: boolean;
}

/** The upload's files are staged under `transferId` (compute_file_transfer_parts); `path` is the directory they go to. */
export interface UploadFilesRequest {
  transferId: string;
  path: string;
}

export interface UploadedFiles {
  /** The directory, resolved in the kernel. */
  path: string;
  files: { name: string; size: number }[];
}

/**
 * `archive: false` answers one regular file as its bytes (a directory, or several paths, still
 * come as a tar); `true` always a tar. The node stages the bytes under `transferId` in chunks.
 */
export interface DownloadFilesRequest {
  transferId: string;
  paths: string[];
  archive: boolean;
  /** Past this many bytes the download is refused (DownloadTooLarge): COMPUTE_DOWNLOAD_MAX_BYTES. */
  maxBytes: number;
}

export interface DownloadedFiles {
  kind: 'file' | 'tar';
  /** The file's name, or a name for the archive. */
  name: string;
  bytes: number;
  chunks: number;
}

/** Lists a directory of the main kernel; InvalidSessionState unless RUNNING, PathNotFound, PathOutsideWorkDir. */
export const listFilesUpdate = defineUpdate<FileListing, [ListFilesRequest]>('listFiles');
/** Writes the staged files into the main kernel, all or none. */
export const uploadFilesUpdate = defineUpdate<UploadedFiles, [UploadFilesRequest]>('uploadFiles');
/** Stages the bytes of files (or a tar of them) from the main kernel for the api to stream. */
export const downloadFilesUpdate = defineUpdate<DownloadedFiles, [DownloadFilesRequest]>('downloadFiles');

/** Why a path the api was given cannot be used (undefined: fine). The kernel does the real confinement. */
export function pathProblem(path: string): string | undefined {
  if (path.length > maxPathChars) return `at most ${maxPathChars} characters`;
  if (path.includes('\u0000')) return 'no NUL characters';
  return undefined;
}

/**
 * Why an upload's file name is refused (undefined: fine): a relative path whose directories are
 * made under the target, never absolute, no `..` or `.` or empty segment, no NUL.
 */
export function uploadNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'a file name is required';
  if (name.length > maxUploadNameChars) return `at most ${maxUploadNameChars} characters`;
  if (name.includes('\u0000')) return 'no NUL characters';
  if (name.startsWith('/')) return 'a relative path, not an absolute one';
  const segments = name.split('/');
  if (segments.some((segment) => segment === '..')) return 'no .. segments: a file stays under the target directory';
  if (segments.some((segment) => segment === '' || segment === '.')) return 'no empty or . segments';
  if (segments.some((segment) => new TextEncoder().encode(segment).length > maxSegmentBytes)) return `each segment at most ${maxSegmentBytes} bytes`;
  return undefined;
}

/** A path as the kernel takes it: relative ones start at the work directory. */
export function kernelPath(path: string | undefined): string {
  if (path === undefined || path === '' || path === '.') return kernelWorkDir;
  return path.startsWith('/') ? path : `${kernelWorkDir}/${path}`;
}
