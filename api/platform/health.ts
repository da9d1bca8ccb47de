import { z } from 'zod';
import type { ApiMetrics } from './metrics';
import { problem, sendProblem } from './problems';
import { checkReadiness, type ReadinessDeps } from './readiness';
import type { ApiRoutes } from './routes';

const dependencyState = z.object({ ok: z.boolean(), error: z.string().optional() });
const readinessSchema = z.object({
  status: z.enum(['ready', 'unready']),
  dependencies: z.record(z.string(), dependencyState),
});

export function registerHealthRoutes(api: ApiRoutes, deps: ReadinessDeps & { metrics: ApiMetrics; openApi: () => unknown }): void {
  api.route(
    { method: 'get', path: '/healthz', summary: 'The process is alive', tag: 'platform', access: 'public', responses: { 200: { description: 'alive', schema: z.object({ status: z.literal('ok') }) } } },
    ({ res }) => {
      res.json({ status: 'ok' });
    },
  );

  api.route(
    {
      method: 'get', path: '/readyz', summary: 'Every dependency answers (Temporal, PostgreSQL, Docker, registry)', tag: 'platform', access: 'public',
      responses: { 200: { description: 'ready', schema: readinessSchema }, 503: { description: 'a dependency does not answer; the problem names it', contentType: 'application/problem+json' } },
    },
    async ({ res }) => {
      const dependencies = await checkReadiness(deps);
      const failing = Object.entries(dependencies).filter(([, state]) => !state.ok).map(([name]) => name);
      if (failing.length === 0) {
        res.json({ status: 'ready', dependencies });
        return;
      }
      sendProblem(res, problem('DependencyUnavailable', `not ready: ${failing.join(', ')} did not answer`, { failing, dependencies }));
    },
  );

  api.route(
    { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tag: 'platform', access: 'public', responses: { 200: { description: 'Prometheus text format', contentType: 'text/plain', schema: z.string() } } },
    async ({ res }) => {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    },
  );

  api.route(
    { method: 'get', path: '/openapi.json', summary: 'This document', tag: 'platform', access: 'public', responses: { 200: { description: 'OpenAPI 3.1' } } },
    ({ res }) => {
      res.json(deps.openApi());
    },
  );
}
