import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Config } from '../../platform/config';
import type { Logger } from '../../platform/logger';
import { apiKeyHashOf } from './auth';
import { ApiError } from './problems';

export type RateLimitConfig = Pick<Config, 'API_RATE_LIMIT_REQUESTS' | 'API_RATE_LIMIT_WINDOW_SECONDS'>;

/**
 * The per-key request limit of the authenticated api (express-rate-limit, fixed window, in
 * memory): it runs after authentication, so it counts by API key — a client cannot escape it by
 * changing address, and one key's burst never throttles another's. Public routes (health,
 * readiness, metrics, the PXE boot script, the terminal page and its WebSocket) never reach
 * it: there is no key to count, and an orchestrator's probes must not be turned away.
 * Undefined when API_RATE_LIMIT_REQUESTS is 0 (off). The count is per process.
 */
export function createRateLimit(config: RateLimitConfig, log: Logger): RequestHandler | undefined {
  if (config.API_RATE_LIMIT_REQUESTS === 0) return undefined;
  const windowMs = config.API_RATE_LIMIT_WINDOW_SECONDS * 1000;
  return rateLimit({
    windowMs,
    limit: config.API_RATE_LIMIT_REQUESTS,
    // The key's SHA-256, as stored: the counter never holds a usable secret.
    keyGenerator: (_req, res) => apiKeyHashOf(res),
    // RateLimit-Policy and RateLimit on every answer, Retry-After on a refusal.
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // Through the error handlers, so the answer is the usual problem (with Piston's `message` on /api/v2).
    handler: (req, _res, next) => {
      const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfterSeconds = Math.max(1, Math.ceil(((resetTime?.getTime() ?? (Date.now() + windowMs)) - Date.now()) / 1000));
      next(new ApiError('RateLimited', `this API key made more than ${config.API_RATE_LIMIT_REQUESTS} requests in ${config.API_RATE_LIMIT_WINDOW_SECONDS} s; retry after ${retryAfterSeconds} s`, {
        limit: config.API_RATE_LIMIT_REQUESTS, windowSeconds: config.API_RATE_LIMIT_WINDOW_SECONDS, retryAfterSeconds,
      }));
    },
    logger: {
      error: (err, message) => log.error({ err }, message ?? 'rate limiter'),
      warn: (err, message) => log.warn({ err }, message ?? 'rate limiter'),
    },
  });
}
