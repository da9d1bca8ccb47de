import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import express from 'express';
import type { Pool } from 'pg';
import type { Config } from '../../platform/config';
import { redactUrl, type Logger } from '../../platform/logger';
import { createApiMetrics, type ApiMetrics } from './metrics';
import { buildOpenApi } from './openapi';
import { errorHandler, problem, sendProblem } from './problems';
import { registerHealthRoutes } from './health';
import { registerSandboxRoutes } from '../sandbox/routes';
import { registerSelfCheckRoutes } from '../selfCheck/routes';
import { registerPxeResourceRoutes } from '../pxe/resources';
import { registerPxeSessionRoutes } from '../pxe/sessions';
import { createExecutionService, type ExecutionServiceConfig } from '../execution/executionService';
import { pistonProblems, registerExecuteRoutes } from '../execution/routes';
import { registerTerminalRoutes, type TerminalConfig } from '../terminal/routes';
import { createRateLimit, type RateLimitConfig } from './rateLimit';
import { ApiRoutes } from './routes';
import { registerUserRoutes } from './users';
import { computeStoreSettingsFrom } from '../../activities/compute/store';
import { registerComputeAdminRoutes } from '../compute/admin';
import { registerComputeFileRoutes } from '../compute/files';
import { registerCommitRoutes } from '../compute/commits';
import { registerRegistryRoutes } from '../compute/registries';
import { registerComputeActionRoutes } from '../compute/sessionActions';
import { registerComputeSessionReadRoutes } from '../compute/sessions';

interface AppDeps {
  config: Pick<Config, 'TEMPORAL_TASK_QUEUE' | 'TEMPORAL_NAMESPACE' | 'TEMPORAL_UI_URL' | 'REGISTRY_ADDRESS' | 'REQUEST_BODY_LIMIT' | 'SANDBOX_TTL_SECONDS' | 'SANDBOX_MAX_PER_USER' | 'COMPUTE_CREATE_WAIT_SECONDS' | 'COMPUTE_AGENT_TIMEOUT_SECONDS' | 'COMPUTE_DEFAULT_MAX_CUSTOMIZED_IMAGES' | 'COMPUTE_DOWNLOAD_MAX_BYTES' | 'COMPUTE_TRANSFERS_PER_USER'> & ComputeConfig & ExecutionServiceConfig & TerminalConfig & RateLimitConfig;
  temporal: Client;
  /** A client on the NativeConnection of an in-process execution worker: executions start eagerly through it. */
  executionClient?: Client;
  pool: Pool;
  docker: Docker;
  log: Logger;
  metrics?: ApiMetrics;
}

type ComputeConfig = Parameters<typeof computeStoreSettingsFrom>[0];

const version = '0.1.0';

export function createApp(deps: AppDeps): express.Express {
  const metrics = deps.metrics ?? createApiMetrics();
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(metrics.observeRequests);
  app.use(requestLog(deps.log));

  const router = express.Router();
  // Bodies are parsed per route (routes.ts): text/plain and forms only where a route's client needs them.
  const api = new ApiRoutes(router, deps.pool, { bodyLimit: deps.config.REQUEST_BODY_LIMIT, rateLimit: createRateLimit(deps.config, deps.log) });
  let openApi: unknown;
  registerHealthRoutes(api, {
    temporal: deps.temporal, pool: deps.pool, docker: deps.docker, registryAddress: deps.config.REGISTRY_ADDRESS, metrics,
    openApi: () => (openApi ??= buildOpenApi(api.specs, version)),
  });
  registerUserRoutes(api, { pool: deps.pool, temporal: deps.temporal });
  registerSelfCheckRoutes(api, {
    temporal: deps.temporal, taskQueue: deps.config.TEMPORAL_TASK_QUEUE, namespace: deps.config.TEMPORAL_NAMESPACE, temporalUiUrl: deps.config.TEMPORAL_UI_URL, metrics,
  });
  registerSandboxRoutes(api, { temporal: deps.temporal, pool: deps.pool, taskQueue: deps.config.TEMPORAL_TASK_QUEUE, ttlSeconds: deps.config.SANDBOX_TTL_SECONDS, maxPerUser: deps.config.SANDBOX_MAX_PER_USER, metrics });
  registerPxeResourceRoutes(api, { temporal: deps.temporal, pool: deps.pool, taskQueue: deps.config.TEMPORAL_TASK_QUEUE });
  registerPxeSessionRoutes(api, { temporal: deps.temporal, pool: deps.pool, taskQueue: deps.config.TEMPORAL_TASK_QUEUE });
  registerExecuteRoutes(api, { config: deps.config, executor: createExecutionService(deps), metrics });
  // The WebSocket bridge is attached to the listening server by api/main.ts (and the tests).
  const compute = { pool: deps.pool, compute: computeStoreSettingsFrom(deps.config) };
  registerComputeAdminRoutes(api, compute);
  registerComputeSessionReadRoutes(api, compute);
  registerComputeActionRoutes(api, {
    ...compute, temporal: deps.temporal, taskQueue: deps.config.TEMPORAL_TASK_QUEUE, createWaitSeconds: deps.config.COMPUTE_CREATE_WAIT_SECONDS,
    timings: { agentTimeoutSeconds: deps.config.COMPUTE_AGENT_TIMEOUT_SECONDS },
  });
  registerComputeFileRoutes(api, { ...compute, temporal: deps.temporal, downloadMaxBytes: deps.config.COMPUTE_DOWNLOAD_MAX_BYTES, transfersPerUser: deps.config.COMPUTE_TRANSFERS_PER_USER });
  // Commit and convert a session, and the registries it goes to.
  registerRegistryRoutes(api, { pool: deps.pool, secretsKey: deps.config.COMPUTE_SECRETS_KEY });
  registerCommitRoutes(api, { ...compute, temporal: deps.temporal, secretsKey: deps.config.COMPUTE_SECRETS_KEY });
  app.locals.terminalBridge = registerTerminalRoutes(api, { config: deps.config, temporal: deps.temporal, pool: deps.pool, log: deps.log, metrics });
  app.use(router);

  app.use((req, res) => sendProblem(res, problem('RouteNotFound', `no route ${req.method} ${req.path}`)));
  app.use('/api/v2', pistonProblems);
  app.use(errorHandler(deps.log));
  return app;
}

function requestLog(log: Logger): express.RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.info({ method: req.method, url: redactUrl(req.originalUrl), status: res.statusCode, ms: Math.round(ms * 10) / 10, user: (res.locals.principal as { userId?: string } | undefined)?.userId }, 'request');
    });
    next();
  };
}
