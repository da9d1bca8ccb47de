import { sessionWorkflowLookup } from './sessionWorkflow';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Response } from 'express';
import { z } from 'zod';
import { createFileTransferStore, type StagedFile } from '../../activities/compute/fileStore';
import { createComputeStore } from '../../activities/compute/store';
import {
  downloadFilesUpdate,
  kernelPath,
  listFilesUpdate,
  maxUploadFileBytes,
  maxUploadFiles,
  pathProblem,
  uploadFilesUpdate,
  uploadNameProblem,
  type DownloadedFiles,
} from '../../domain/compute/files';
import { type Principal } from '../platform/auth';
import { perUserInFlight } from '../platform/inFlight';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { ComputeRouteDeps } from './admin';
import { readMultipartUpload } from './multipartUpload';
import { sessionsBase } from './sessions';

/**
 * Room for a whole upload in JSON: every file at the limit in base64 (4 bytes for each 3), and a
 * mebibyte for names and syntax. Only the upload route takes bodies this large.
 */
const uploadBodyBytes = maxUploadFiles * Math.ceil(maxUploadFileBytes / 3) * 4 + 1024 * 1024;
const maxDownloadPaths = 100;

const idParams = z.object({ id: z.uuid() });
const problems = (codes: string) => ({ description: codes, contentType: 'application/problem+json' });
const refine = (problemOf: (value: string) => string | undefined) => (value: string, ctx: z.RefinementCtx) => {
  const problem = problemOf(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};
const pathField = z.string().superRefine(refine(pathProblem));

const listQuery = z.object({
  path: pathField.optional().describe('a directory; relative paths start at /home/work (the default)'),
  show_hidden: z.enum(['true', 'false', '1', '0']).optional().transform((value) => value === 'true' || value === '1').describe('include names starting with a dot'),
});
const entryView = z.object({
  name: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'other']),
  size: z.number(),
  mode: z.string().describe('as ls -l writes it, e.g. -rw-r--r--'),
  mode_octal: z.string().describe('the permission bits, e.g. 0644'),
  mtime: z.string().describe('ISO 8601, UTC'),
  target: z.string().optional().describe('where a symlink points'),
});
const listView = z.object({ path: z.string(), entries: z.array(entryView), truncated: z.boolean().describe(`more entries than a listing holds (2000): the first ones by name`) });

const uploadFile = z.strictObject({
  name: z.string().superRefine(refine(uploadNameProblem)).describe('relative to path; subdirectories are made'),
  content: z.union([z.instanceof(Buffer), z.base64('base64 of the file\'s bytes')]).describe('base64 of the file\'s bytes (JSON); a multipart part\'s bytes'),
});
const uploadBody = z.strictObject({
  path: pathField.optional().describe('the directory the files go to (made when missing); default /home/work'),
  files: z.array(uploadFile).min(1, 'at least one file'),
});
const uploadView = z.object({ path: z.string(), files: z.array(z.object({ name: z.string(), size: z.number() })) });

const downloadQuery = z.object({
  path: z.union([pathField, z.array(pathField).min(1).max(maxDownloadPaths)]).describe('one path: its bytes (a directory: a tar); repeated: a tar of them all'),
});
const downloadBody = z.strictObject({ paths: z.array(pathField).min(1).max(maxDownloadPaths) });

export interface FileRouteDeps extends ComputeRouteDeps {
  temporal: Client;
  /** COMPUTE_DOWNLOAD_MAX_BYTES */
  downloadMaxBytes: number;
  /** COMPUTE_TRANSFERS_PER_USER: uploads and downloads of one user going on at once. */
  transfersPerUser: number;
}

/**
 * Files of a session's main kernel under /home/work: list, upload (JSON or multipart), download
 * one file or a tar of several. Each is an update on the session's workflow, carried out on the
 * kernel's node; the bytes are staged in PostgreSQL (fileStore.ts), never in Temporal, and the
 * staging rows are deleted once the request is answered.
 */
export function registerComputeFileRoutes(api: ApiRoutes, deps: FileRouteDeps): void {
  const store = createComputeStore(deps.pool, deps.compute);
  const transfers = createFileTransferStore(deps.pool);

  /** The session's workflow, after the owner check (another user's session is a 404) and a look at its status in the read model. */
  const sessionFor = sessionWorkflowLookup(store, deps.temporal);
  async function runningSession(id: string, principal: Principal) {
    const found = await sessionFor(id, principal);
    if (found.info.status !== 'RUNNING') throw notRunning(id, found.info.status);
    return found;
  }

  const notRunning = (id: string, status: string) =>
    new ApiError('InvalidSessionState', `the session ${id} is ${status}: files need a RUNNING session`, { current_status: status, allowed_statuses: ['RUNNING'] });

  /** An update on the session; a workflow that has ended meanwhile is a session no longer RUNNING. */
  async function update<T>(id: string, status: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notRunning(id, status);
      throw err;
    }
  }

  const common = {
    404: problems('SessionNotFound; PathNotFound: nothing at that path'),
    409: problems('InvalidSessionState: the session is not RUNNING'),
    502: problems('KernelFailed'),
    503: problems('AgentNotAvailable'),
  };
  // A transfer holds its body (up to ~28 MB of JSON) and staging rows while it lasts: a few per user at once.
  const transferGuard = perUserInFlight(deps.transfersPerUser, (limit) => new ApiError('TooManyTransfers', `at most ${limit} file transfers of yours at once: retry when one has ended`, { limit }));
  const transferRefused = { 429: problems('TooManyTransfers: COMPUTE_TRANSFERS_PER_USER of yours going on (Retry-After)') };

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/files`, summary: 'List a directory of the main kernel (under /home/work): name, type, size, mode, mtime of each entry', tag: 'compute', access: 'user', params: idParams, query: listQuery,
      responses: {
        200: { description: 'the entries sorted by name; hidden ones only with show_hidden', schema: listView },
        400: problems('ValidationFailed (also: not a directory); PathOutsideWorkDir: the path resolves outside /home/work'),
        ...common,
      },
    },
    async ({ params, query, principal, res }) => {
      const { info, handle } = await runningSession(params.id, principal);
      const listing = await update(params.id, info.status, () => handle.executeUpdate(listFilesUpdate, { args: [{ path: kernelPath(query.path), showHidden: query.show_hidden }] }));
      res.json({
        path: listing.path,
        entries: listing.entries.map(({ modeOctal, ...entry }) => ({ ...entry, mode_octal: modeOctal })),
        truncated: listing.truncated,
      });
    },
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/files`, summary: `Upload files into the main kernel: JSON (content in base64) or multipart/form-data (parts named files); at most ${maxUploadFiles} files of at most 1 MiB each, written all or none, owned by work`, tag: 'compute', access: 'user', params: idParams, body: uploadBody,
      bodyLimit: `${uploadBodyBytes}b`,
      multipart: (req) => readMultipartUpload(req, uploadBodyBytes),
      guards: [transferGuard],
      responses: {
        ...transferRefused,
        200: { description: 'the files written, and the directory they are in', schema: uploadView },
        400: problems(`ValidationFailed (a file name absolute, with .., NUL or an empty segment, or given twice); TooManyFiles (more than ${maxUploadFiles}); PathOutsideWorkDir`),
        413: problems('FileTooLarge (naming the file); PayloadTooLarge'),
        ...common,
      },
    },
    async ({ params, body, principal, res }) => {
      const files = stagedFiles(body.files);
      const { info, handle } = await runningSession(params.id, principal);
      const transferId = await transfers.createUpload(params.id, files);
      try {
        res.json(await update(params.id, info.status, () => handle.executeUpdate(uploadFilesUpdate, { args: [{ transferId, path: kernelPath(body.path) }] })));
      } finally {
        await transfers.deleteTransfer(transferId);
      }
    },
  );

  const downloadResponses = {
    400: problems('ValidationFailed; PathOutsideWorkDir: a path resolves outside /home/work'),
    413: problems('DownloadTooLarge: more than COMPUTE_DOWNLOAD_MAX_BYTES'),
    ...transferRefused,
    ...common,
  };

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/files/download`, summary: 'Download a file of the main kernel as its bytes (a directory, or a repeated path: a tar)', tag: 'compute', access: 'user', params: idParams, query: downloadQuery, guards: [transferGuard],
      responses: {
        200: { description: 'the file\'s bytes (Content-Type from its extension), or application/x-tar; Content-Disposition names it' },
        ...downloadResponses,
      },
    },
    async ({ params, query, principal, res }) => {
      const paths = Array.isArray(query.path) ? query.path : [query.path];
      await download(params.id, principal, paths.map(kernelPath), paths.length > 1, res);
    },
  );

  api.route(
    {
      method: 'post', path: `${sessionsBase}/:id/files/download`, summary: 'Download files and directories of the main kernel as one tar', tag: 'compute', access: 'user', params: idParams, body: downloadBody, guards: [transferGuard],
      responses: {
        200: { description: 'application/x-tar: each path under its name relative to /home/work (directories whole, symlinks as links)' },
        ...downloadResponses,
      },
    },
    async ({ params, body, principal, res }) => {
      await download(params.id, principal, body.paths.map(kernelPath), true, res);
    },
  );

  /** Stages the download on the node, streams the chunks to the client, and deletes them whatever happens. */
  async function download(id: string, principal: Principal, paths: string[], archive: boolean, res: Response): Promise<void> {
    const { info, handle } = await runningSession(id, principal);
    const transferId = await transfers.createDownload(id);
    try {
      const staged = await update(id, info.status, () => handle.executeUpdate(downloadFilesUpdate, { args: [{ transferId, paths, archive, maxBytes: deps.downloadMaxBytes }] }));
      await streamDownload(res, staged, (seq) => transfers.part(transferId, seq));
    } finally {
      await transfers.deleteTransfer(transferId);
    }
  }
}

/**
 * The body's files as they are staged, after the limits the seed sets (checked on the whole
 * request before anything is written): the count, then each file's size.
 */
function stagedFiles(files: { name: string; content: Buffer | string }[]): StagedFile[] {
  if (files.length > maxUploadFiles) {
    throw new ApiError('TooManyFiles', `${files.length} files: at most ${maxUploadFiles} in one upload`, { count: files.length, max_files: maxUploadFiles });
  }
  const staged = files.map((file) => ({ name: file.name, data: typeof file.content === 'string' ? Buffer.from(file.content, 'base64') : file.content }));
  const tooLarge = staged.find((file) => file.data.length > maxUploadFileBytes);
  if (tooLarge) {
    throw new ApiError('FileTooLarge', `${tooLarge.name} is larger than ${maxUploadFileBytes} bytes (1 MiB)`, { name: tooLarge.name, max_bytes: maxUploadFileBytes });
  }
  const names = new Set<string>();
  for (const [index, file] of staged.entries()) {
    if (names.has(file.name)) throw new ApiError('ValidationFailed', `${file.name} is given twice`, { errors: [{ field: `body.files.${index}.name`, message: 'given twice' }] });
    names.add(file.name);
  }
  return staged;
}

/**
 * The staged chunks to the client, one at a time, waiting for the client to take each. Once the
 * headers are out a failure cannot be a problem answer: the connection is cut, so the client
 * sees a short body rather than a complete-looking one.
 */
async function streamDownload(res: Response, staged: DownloadedFiles, chunk: (seq: number) => Promise<Buffer | undefined>): Promise<void> {
  res.attachment(staged.name);
  if (staged.kind === 'tar') res.type('application/x-tar');
  res.setHeader('Content-Length', String(staged.bytes));
  try {
    for (let seq = 0; seq < staged.chunks && !res.destroyed; seq++) {
      const data = await chunk(seq);
      if (!data) throw new Error(`chunk ${seq} of the download is gone`);
      if (!res.write(data)) await drainedOrClosed(res);
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/** Until the client has taken what was written, or has gone. */
function drainedOrClosed(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
