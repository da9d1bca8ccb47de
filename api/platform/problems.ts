import { isGrpcServiceError, WorkflowNotFoundError } from '@temporalio/client';
import type { ErrorRequestHandler, Response } from 'express';
import { z } from 'zod';
import { errorCatalogue, isErrorCode, type ErrorCode } from '../../domain/shared/errors';
import { namedFailure } from '../../domain/shared/failures';
import { redactUrl, type Logger } from '../../platform/logger';

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
  // A client told to come back (a full pool, a dependency away) learns when.
  if (typeof body.retryAfterSeconds === 'number') res.setHeader('Retry-After', String(body.retryAfterSeconds));
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

  const outage = dependencyOutage(err);
  if (outage) return problem('DependencyUnavailable', `${outage} does not answer; try again shortly`, { dependency: outage, retryAfterSeconds: 5 });

  // The router could not decode a path parameter (`%ZZ`): the request's fault.
  if (err instanceof URIError) return problem('ValidationFailed', 'the path holds malformed percent-encoding', { errors: [{ field: 'params', message: 'malformed percent-encoding' }] });

  // body-parser's own errors carry a `type`.
  const parserType = typeof err === 'object' && err !== null && 'type' in err ? (err as { type: unknown }).type : undefined;
  if (parserType === 'entity.parse.failed') return problem('ValidationFailed', 'the body is not valid JSON', { errors: [{ field: 'body', message: 'malformed JSON' }] });
  if (parserType === 'entity.too.large') return problem('PayloadTooLarge', 'the request body is larger than the server accepts');
  if (parserType === 'charset.unsupported' || parserType === 'encoding.unsupported') return problem('UnsupportedMediaType', 'unsupported body encoding');
  return undefined;
}

// PostgreSQL's "cannot connect now", "statement timed out" and connection failures (SQLSTATE
// classes 08 and 57), and the socket errors of any dependency's client.
const postgresOutageCodes = /^(08|57)/;
const socketOutageCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);
// gRPC UNAVAILABLE and DEADLINE_EXCEEDED: the Temporal frontend is away or too slow.
const temporalOutageStatuses = new Set([14, 4]);

/** Which dependency an error says is away (a 503, not a 500), if any. */
function dependencyOutage(err: unknown): string | undefined {
  // Duck-typed, not `instanceof Error`: Node's socket errors may come from another realm.
  for (let cause = err as { code?: unknown; message?: unknown; severity?: unknown; cause?: unknown } | undefined, depth = 0; typeof cause === 'object' && cause !== null && depth < 8; cause = cause.cause as typeof cause, depth++) {
    if (isGrpcServiceError(cause) && temporalOutageStatuses.has(cause.code)) return 'Temporal';
    const { code, message } = cause;
    if (typeof code === 'string' && cause.severity !== undefined && postgresOutageCodes.test(code)) return 'PostgreSQL';
    if (typeof code === 'string' && socketOutageCodes.has(code)) return 'a dependency';
    // pg-pool's own words when no connection came within the connect timeout.
    if (typeof message === 'string' && /timeout exceeded when trying to connect|Connection terminated/i.test(message)) return 'PostgreSQL';
  }
  return undefined;
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const known = toProblem(err);
    if (known) {
      sendProblem(res, known);
      return;
    }
    log.error({ err, method: req.method, url: redactUrl(req.originalUrl) }, 'unhandled error');
    sendProblem(res, problem('Internal', 'the server failed to handle this request; it has been logged'));
  };
}
