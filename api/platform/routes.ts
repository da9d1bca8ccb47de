import type { Request, RequestHandler, Response, Router } from 'express';
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

  /** `rateLimit` counts each authenticated request by its key (undefined: no limit). */
  constructor(
    private readonly router: Router,
    pool: Pool,
    rateLimit?: RequestHandler,
  ) {
    this.authenticated = rateLimit ? [authenticate(pool), rateLimit] : [authenticate(pool)];
  }

  route<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown>(
    spec: RouteSpec<P, Q, B>,
    handler: Handler<z.infer<P>, z.infer<Q>, z.infer<B>>,
  ): void {
    this.specs.push(spec as unknown as RouteSpec<z.ZodType, z.ZodType, z.ZodType>);
    const guards: RequestHandler[] = [];
    if (spec.access !== 'public') guards.push(...this.authenticated);
    if (spec.access === 'admin') guards.push(requireRole('admin'));
    this.router[spec.method](spec.path, ...guards, async (req, res) => {
      const params = parse(spec.params, req.params, 'params');
      const query = parse(spec.query, req.query, 'query');
      const body = parse(spec.body, req.body ?? undefined, 'body');
      const principal = spec.access === 'public' ? anonymous : principalOf(res);
      await handler({ params, query, body, principal, req, res });
    });
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
