import type { RequestHandler } from 'express';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  workflowsStarted: Counter<'workflow'>;
  observeRequests: RequestHandler;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sessionflow_api_' });
  const requests = new Histogram({
    name: 'sessionflow_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const workflowsStarted = new Counter({
    name: 'sessionflow_workflows_started_total',
    help: 'Workflows the api started, by workflow type',
    labelNames: ['workflow'] as const,
    registers: [registry],
  });
  const observeRequests: RequestHandler = (req, res, next) => {
    const stop = requests.startTimer();
    res.on('finish', () => {
      // The route pattern, not the URL: ids in paths would explode the label set.
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      stop({ method: req.method, route: `${req.baseUrl}${route}`, status: String(res.statusCode) });
    });
    next();
  };
  return { registry, workflowsStarted, observeRequests };
}
