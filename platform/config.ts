import { z } from 'zod';
import { defaultTaskQueue } from '../domain/taskQueues';

/**
 * Configuration comes from the environment only, validated once at start: a typo fails the
 * process with the variable's name instead of surfacing as a strange error later. Every
 * default here is the embedded single-machine setup that scripts/up.sh brings up; the
 * README's configuration table lists the same variables (a unit test keeps them in step).
 */
const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /**
   * Names this deployment on a shared Docker engine: every container carries it as a label,
   * and reconcilers only ever remove containers of their own instance.
   */
  SESSIONFLOW_INSTANCE: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lowercase letters, digits, _ . -').default('sessionflow'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/sessionflow'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(defaultTaskQueue),
  TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  DOCKER_SOCKET: z.string().min(1).default('/var/run/docker.sock'),
  BASE_IMAGE: z.string().min(1).default('sessionflow/base:bookworm'),
  REGISTRY_ADDRESS: z.string().regex(/^[\w.-]+(:\d+)?$/, 'host:port').default('127.0.0.1:5000'),
  WORKFLOW_BUNDLE_PATH: z.string().min(1).default('dist/workflow-bundle.js'),
  REQUEST_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'a size such as 1mb').default('1mb'),
  /** Terminals: base64 of 32 bytes sealing host credentials (AES-256-GCM); scripts/up.sh keeps one in SESSIONFLOW_HOME. */
  TERMINAL_CREDENTIALS_KEY: z.base64().refine((value) => Buffer.from(value, 'base64').length === 32, 'base64 of exactly 32 bytes').optional(),
  TERMINAL_SESSION_TTL_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(1800),
  TERMINAL_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(120),
  TERMINAL_MAX_ACTIVE_SESSIONS: z.coerce.number().int().min(1).max(1000).default(3),
  /** Extra origins allowed to open terminal WebSockets (comma-separated); the api's own origin always is. */
  TERMINAL_ALLOWED_ORIGINS: z.string().default(''),
});

export type Config = z.infer<typeof configSchema>;
export const configKeys = Object.keys(configSchema.shape) as (keyof Config)[];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(configKeys.filter((key) => env[key] !== undefined && env[key] !== '').map((key) => [key, env[key]]));
  const parsed = configSchema.safeParse(known);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration — ${problems.join('; ')}`);
  }
  return parsed.data;
}
