import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import request from 'supertest';
import { createApp } from '../../api/platform/app';
import { openApiPath } from '../../api/platform/openapi';
import { loadConfig } from '../../platform/config';
import { createLogger } from '../../platform/logger';

// Building the app touches no dependency; these placeholders are never called.
const app = createApp({ config: loadConfig({}), temporal: {} as Client, pool: {} as Pool, docker: {} as Docker, log: createLogger('silent', 'test') });

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

function routesOf(stack: Layer[]): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) return Object.keys(layer.route.methods).map((method) => `${method} ${openApiPath(layer.route!.path)}`);
    return layer.handle?.stack ? routesOf(layer.handle.stack) : [];
  });
}

describe('/openapi.json', () => {
  it('describes every route the app serves, and nothing else', async () => {
    const { body } = await request(app).get('/openapi.json').expect(200);
    const documented = Object.entries(body.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`));
    const served = routesOf((app as unknown as { router: { stack: Layer[] } }).router.stack);
    expect(served.length).toBeGreaterThan(5);
    expect(documented.sort()).toEqual(served.sort());
  });

  it('marks admin routes and documents their input', async () => {
    const { body } = await request(app).get('/openapi.json').expect(200);
    const start = body.paths['/api/v1/admin/self-check'].post;
    expect(start['x-required-role']).toBe('admin');
    expect(start.requestBody.content['application/json'].schema.properties.checks.items.enum).toEqual(['docker', 'container', 'database', 'registry']);
    expect(body.paths['/api/v1/admin/self-check/{id}'].get.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
  });

  it('documents the rate limit\'s 429 on every authenticated route, beside a route\'s own 429, and on no public one', async () => {
    const { body } = await request(app).get('/openapi.json').expect(200);
    const operations = Object.values(body.paths as Record<string, Record<string, { security: unknown[]; responses: Record<string, { description: string }> }>>).flatMap((methods) => Object.values(methods));
    for (const operation of operations) {
      expect(operation.responses['429']?.description?.includes('RateLimited') ?? false).toBe(operation.security.length > 0);
    }
    expect(body.paths['/api/v2/execute'].post.responses['429'].description).toMatch(/^PoolExhausted.*; or RateLimited/);
  });

  it('offers HTTP Basic and text/plain JSON only where a headerless client needs them (Piston, the close beacon)', async () => {
    const { body } = await request(app).get('/openapi.json').expect(200);
    const operations = Object.entries(body.paths as Record<string, Record<string, { security: object[]; requestBody?: { content: Record<string, unknown> } }>>)
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ route: `${method} ${path}`, operation })));
    const withBasic = operations.filter(({ operation }) => operation.security.some((scheme) => 'basic' in scheme)).map(({ route }) => route);
    expect(withBasic.sort()).toEqual(['get /api/v2/runtimes', 'post /api/v2/execute']);
    const takes = (type: string) => operations.filter(({ operation }) => operation.requestBody && type in operation.requestBody.content).map(({ route }) => route).sort();
    expect(takes('text/plain')).toEqual(['post /api/v1/terminals/{id}/close-beacon', 'post /api/v2/execute']);
    expect(takes('application/x-www-form-urlencoded')).toEqual(['post /api/v1/terminals/{id}/close-beacon']);
    expect(takes('application/json').length).toBeGreaterThan(10);
  });

  it('lists the user and key routes as admin-only, and no key route takes a role', async () => {
    const { body } = await request(app).get('/openapi.json').expect(200);
    const userRoutes = Object.entries(body.paths as Record<string, Record<string, { 'x-required-role'?: string; requestBody?: { content: Record<string, { schema: { properties?: object; additionalProperties?: boolean } }> } }>>)
      .filter(([path]) => path.startsWith('/api/v1/admin/users'))
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ route: `${method} ${path}`, operation })));
    expect(userRoutes.map(({ route }) => route).sort()).toEqual([
      'delete /api/v1/admin/users/{userId}/keys/{keyId}', 'get /api/v1/admin/users', 'get /api/v1/admin/users/{userId}', 'post /api/v1/admin/users',
      'post /api/v1/admin/users/{userId}/disable', 'post /api/v1/admin/users/{userId}/enable', 'post /api/v1/admin/users/{userId}/keys',
    ]);
    for (const { route, operation } of userRoutes) expect({ route, role: operation['x-required-role'] }).toEqual({ route, role: 'admin' });
    const issue = body.paths['/api/v1/admin/users/{userId}/keys'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(issue.properties).sort()).toEqual(['expires_at', 'label']);
    expect(issue.additionalProperties).toBe(false);
  });
});
