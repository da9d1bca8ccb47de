import { WorkflowNotFoundError } from '@temporalio/client';
import type { ErrorRequestHandler, Response } from 'express';
import { z } from 'zod';
import { errorCatalogue, isErrorCode, type ErrorCode } from '../../domain/shared/errors';
import { namedFailure } from '../../domain/shared/failures';
import type { Logger } from '../../platform/logger';

/** An error the api answers on purpose: a catalogue code, a detail, and fields a client needs. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = code;
  }
}

export interface Problem {
  status: number;
  body: Record<string, unknown> & { type: string; code: ErrorCode; title: string; status: number; detail: string };
}

export function problem(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  const { status, title } = errorCatalogue[code];
  return { status, body: { type: `https://sessionflow.dev/problems/${code}`, code, title, status, detail, ...extra } };
}

export function sendProblem(res: Response, { status, body }: Problem): void {
  res.status(status).type('application/problem+json').send(JSON.stringify(body));
}

/** Field errors as a client can act on them: where, and what is wrong. */
export function fieldErrors(error: z.ZodError, location: string): { field: string; message: string }[] {
  return error.issues.map((issue) => ({ field: [location, ...issue.path.map(String)].join('.'), message: issue.message }));
}

/** The one place an error becomes an HTTP answer. */
export function toProblem(err: unknown): Problem | undefined {
  if (err instanceof ApiError) return problem(err.code, err.message, err.extra);

  // A named failure from a workflow or activity keeps its name across the Temporal boundary.
  const failure = namedFailure(err);
  if (failure && isErrorCode(failure.type)) {
    const [details] = failure.details ?? [];
    return problem(failure.type, failure.message, typeof details === 'object' && details !== null ? { ...details } : {});
  }
  if (err instanceof WorkflowNotFoundError) return problem('NotFound', 'no such workflow');

  // body-parser's own errors carry a `type`.
  const parserType = typeof err === 'object' && err !== null && 'type' in err ? (err as { type: unknown }).type : undefined;
  if (parserType === 'entity.parse.failed') return problem('ValidationFailed', 'the body is not valid JSON', { errors: [{ field: 'body', message: 'malformed JSON' }] });
  if (parserType === 'entity.too.large') return problem('PayloadTooLarge', 'the request body is larger than the server accepts');
  if (parserType === 'charset.unsupported' || parserType === 'encoding.unsupported') return problem('UnsupportedMediaType', 'unsupported body encoding');
  return undefined;
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const known = toProblem(err);
    if (known) {
      sendProblem(res, known);
      return;
    }
    log.error({ err, method: req.method, url: req.originalUrl }, 'unhandled error');
    sendProblem(res, problem('Internal', 'the server failed to handle this request; it has been logged'));
  };
}
