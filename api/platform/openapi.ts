import { z } from 'zod';
import { errorCatalogue } from '../../domain/shared/errors';
import { bodyTypes, type RouteSpec } from './routes';

const problemSchema = {
  type: 'object',
  required: ['type', 'code', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    code: { type: 'string', enum: Object.keys(errorCatalogue) },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
  },
  additionalProperties: true,
};

/** express `/a/:id` → OpenAPI `/a/{id}` */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]\w*)/g, '{$1}');
}

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!(schema instanceof z.ZodObject)) return [];
  const required = new Set((jsonSchema(schema).required as string[] | undefined) ?? []);
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: jsonSchema(field),
  }));
}

const rateLimitedResponse = 'RateLimited: this API key made too many requests in the window; retry after Retry-After seconds';

/** The body's schema under every type the route takes (JSON, and the headerless clients' types it grants). */
function requestContent(spec: RouteSpec<z.ZodType, z.ZodType, z.ZodType>, schema: Record<string, unknown>) {
  return Object.fromEntries(bodyTypes(spec).map((type) => [type, { schema }]));
}

export function buildOpenApi(specs: RouteSpec<z.ZodType, z.ZodType, z.ZodType>[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      const contentType = response.contentType ?? 'application/json';
      responses[status] = { description: response.description, ...(response.schema ? { content: { [contentType]: { schema: jsonSchema(response.schema) } } } : {}) };
    }
    // Every authenticated route counts against the key's rate limit (api/platform/rateLimit.ts).
    if (spec.access !== 'public') {
      const existing = responses['429'] as { description: string } | undefined;
      responses['429'] = { ...existing, description: [existing?.description, rateLimitedResponse].filter(Boolean).join('; or ') };
    }
    responses.default = { description: 'A named error', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    const path = openApiPath(spec.path);
    paths[path] ??= {};
    paths[path][spec.method] = {
      summary: spec.summary,
      tags: [spec.tag],
      security: spec.access === 'public' ? [] : [{ bearer: [] }, ...(spec.headerless?.basicAuth ? [{ basic: [] }] : [])],
      ...(spec.access === 'admin' ? { 'x-required-role': 'admin' } : {}),
      parameters: [...parameters(spec.params, 'path'), ...parameters(spec.query, 'query')],
      ...(spec.body ? { requestBody: { required: !spec.body.safeParse(undefined).success, content: requestContent(spec, jsonSchema(spec.body)) } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'sessionflow', version, description: 'Sessions as durable Temporal workflows. Errors are application/problem+json with a `code` from the catalogue.' },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <api key>' },
        basic: { type: 'http', scheme: 'basic', description: 'The API key as the password: only the Piston routes, for clients that cannot set headers' },
      },
      schemas: { Problem: problemSchema },
    },
    paths,
  };
}
