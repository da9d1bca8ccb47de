import busboy from 'busboy';
import type { Request } from 'express';
import { maxUploadFileBytes, maxUploadFiles } from '../../domain/compute/files';
import { ApiError } from '../platform/problems';

export interface MultipartUpload {
  path?: string;
  files: { name: string; content: Buffer }[];
  /** Any other field or part, so the body schema names it as unknown. */
  [field: string]: unknown;
}

/**
 * A multipart/form-data upload read into what the JSON body carries: the `path` field, and
 * every `files` part as `{name: its filename (subdirectories kept), content}`. What is kept is
 * bounded so the route's checks can still tell what was wrong: a file keeps at most one byte
 * past the per-file limit (FileTooLarge), and files past the count limit are counted with no
 * content (TooManyFiles). More than `maxRequestBytes` in all is PayloadTooLarge.
 */
export function readMultipartUpload(req: Request, maxRequestBytes: number): Promise<MultipartUpload> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers, preservePath: true, defParamCharset: 'utf8',
        limits: { fileSize: maxUploadFileBytes + 1, fields: 16, fieldSize: 16 * 1024, parts: 1024 },
      });
    } catch (err) {
      reject(invalid('body', `not a multipart body: ${(err as Error).message}`));
      return;
    }
    const upload: MultipartUpload = { files: [] };
    let problem: ApiError | undefined;
    parser.on('field', (name, value) => {
      if (name === 'files') problem ??= invalid('body.files', 'each file is a part with a filename');
      else upload[name] = value;
    });
    parser.on('file', (name, stream, info) => {
      if (name !== 'files') {
        upload[name] = info.filename;
        stream.resume();
        return;
      }
      const file = { name: info.filename ?? '', content: Buffer.alloc(0) };
      upload.files.push(file);
      // Counted, not kept: the route answers TooManyFiles with the count.
      if (upload.files.length > maxUploadFiles) {
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        file.content = Buffer.concat(chunks);
      });
    });
    parser.on('close', () => {
      if (problem) reject(problem);
      else resolve(upload);
    });
    parser.on('error', (err: Error) => reject(invalid('body', `the multipart body is not valid: ${err.message}`)));
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxRequestBytes) {
        req.unpipe(parser);
        parser.destroy();
        reject(new ApiError('PayloadTooLarge', `the upload is larger than ${maxRequestBytes} bytes`));
      }
    });
    req.on('error', reject);
    req.pipe(parser);
  });
}

function invalid(field: string, message: string): ApiError {
  return new ApiError('ValidationFailed', message, { errors: [{ field, message }] });
}
