import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { z } from 'zod';
import { authenticate, principalOf, requireRole, type Principal } from './auth';
import { ApiError, fieldErrors } from './problems';
import type { Pool } from 'pg';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Access = 'public' | 'user' | 'admin';

interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  contentType?: string;
}

/**
 * One declaration per route: it registers the handler, validates the input with its zod
 * schemas, enforces access, and is what /openapi.json is built from — so the document cannot
 * drift from the routes.
 */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: Method;
  path: string;
  summary: string;
  tag: string;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseSpec>;
  headerless?: HeaderlessClient;
  /** A JSON body limit of the route's own (default REQUEST_BODY_LIMIT): for a body large on purpose, as a file upload. */
  bodyLimit?: string;
  /**
   * multipart/form-data taken as well: `read` turns the request into the value the body schema
   * then validates, as it would a JSON body (reading and bounding the stream is the route's).
   */
  multipart?: (req: Request) => Promise<unknown>;
  /** Guards run once the caller is known and before the body is read (e.g. perUserInFlight). */
  guards?: RequestHandler[];
}

/**
 * Concessions to clients that cannot set headers. Each is a cross-site request forgery path — a
 * browser sends a text/plain body or a form to any site without a preflight, and replays the
 * Basic credentials it remembers — so only a route with a real client that needs one grants it.
 */
export interface HeaderlessClient {
  /** The key as the password of HTTP Basic: Piston clients, given `http://user:KEY@host`. */
  basicAuth?: boolean;
  /** JSON sent as text/plain: Piston clients and navigator.sendBeacon. */
  textPlainJson?: boolean;
  /** An urlencoded form: navigator.sendBeacon with URLSearchParams. */
  form?: boolean;
}

/** The body types a route accepts: JSON always, the headerless clients' types where granted, multipart where the route reads it. */
export function bodyTypes(spec: { headerless?: HeaderlessClient; multipart?: unknown }): string[] {
  return [
    'application/json',
    ...(spec.multipart ? ['multipart/form-data'] : []),
    ...(spec.headerless?.textPlainJson ? ['text/plain'] : []),
    ...(spec.headerless?.form ? ['application/x-www-form-urlencoded'] : []),
  ];
}

interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
  req: Request;
  res: Response;
}

type Handler<P, Q, B> = (input: RouteInput<P, Q, B>) => Promise<void> | void;

export class ApiRoutes {
  readonly specs: RouteSpec<z.ZodType, z.ZodType, z.ZodType>[] = [];
  private readonly authenticated: RequestHandler[];
  private readonly authenticatedOrBasic: RequestHandler[];
  private readonly parsers: { json: RequestHandler; textPlainJson: RequestHandler; form: RequestHandler };

  /** `rateLimit` counts each authenticated request by its key (undefined: no limit). */
  constructor(
    private readonly router: Router,
    pool: Pool,
    options: { bodyLimit: string; rateLimit?: RequestHandler },
  ) {
    const limited = options.rateLimit ? [options.rateLimit] : [];
    this.authenticated = [authenticate(pool, { basic: false }), ...limited];
    this.authenticatedOrBasic = [authenticate(pool, { basic: true }), ...limited];
    this.parsers = {
      json: express.json({ limit: options.bodyLimit, type: ['application/json', 'application/*+json'] }),
      textPlainJson: express.json({ limit: options.bodyLimit, type: 'text/plain' }),
      // A form only ever carries a close beacon's token.
      form: express.urlencoded({ extended: false, limit: '4kb' }),
    };
  }

  route<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown>(
    spec: RouteSpec<P, Q, B>,
    handler: Handler<z.infer<P>, z.infer<Q>, z.infer<B>>,
  ): void {
    this.specs.push(spec as unknown as RouteSpec<z.ZodType, z.ZodType, z.ZodType>);
    const guards: RequestHandler[] = [];
    if (spec.access !== 'public') guards.push(...(spec.headerless?.basicAuth ? this.authenticatedOrBasic : this.authenticated));
    if (spec.access === 'admin') guards.push(requireRole('admin'));
    guards.push(...(spec.guards ?? []), ...this.bodyParsers(spec));
    this.router[spec.method](spec.path, ...guards, async (req, res) => {
      const params = parse(spec.params, req.params, 'params');
      const query = parse(spec.query, req.query, 'query');
      const raw: unknown = spec.multipart && req.is('multipart/form-data') ? await spec.multipart(req) : req.body;
      const body = parse(spec.body, raw ?? undefined, 'body');
      const principal = spec.access === 'public' ? anonymous : principalOf(res);
      await handler({ params, query, body, principal, req, res });
    });
  }

  /** Refuses a body of a type the route does not take (415), then parses the ones it does. */
  private bodyParsers(spec: { headerless?: HeaderlessClient; bodyLimit?: string; multipart?: unknown }): RequestHandler[] {
    const accepted = bodyTypes(spec);
    const refuseOthers: RequestHandler = (req, _res, next) => {
      // An empty body (Content-Length: 0) is no body: the schema judges that.
      const hasContent = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
      if (hasContent && !req.is([...accepted, 'application/*+json'])) {
        throw new ApiError('UnsupportedMediaType', `send the body as ${accepted.join(' or ')}`, { accepted });
      }
      next();
    };
    return [
      refuseOthers,
      spec.bodyLimit ? express.json({ limit: spec.bodyLimit, type: ['application/json', 'application/*+json'] }) : this.parsers.json,
      ...(spec.headerless?.textPlainJson ? [this.parsers.textPlainJson] : []),
      ...(spec.headerless?.form ? [this.parsers.form] : []),
    ];
  }
}

const anonymous: Principal = { userId: '', name: 'anonymous', role: 'user' };

function parse<T extends z.ZodType>(schema: T | undefined, value: unknown, location: string): z.infer<T> {
  if (!schema) return value as z.infer<T>;
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ApiError('ValidationFailed', `the request ${location} is not valid`, { errors: fieldErrors(result.error, location) });
  }
  return result.data;
}
