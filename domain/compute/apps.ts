import { z } from 'zod';
import { appProtocols, directAccessServiceName, type ImageApps } from './services';

/**
 * The zod schemas of services: an image's apps (admin routes) and the start-service body. Kept
 * apart from services.ts, which the workflow bundles, so that zod stays out of workflow code.
 */

/** Ports a kernel's user (`work`, no capabilities) can listen on. */
export const servicePortField = z.number().int().min(1024).max(65535);

export const appNamePattern = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const appName = z.string().regex(appNamePattern, '1-63 lowercase letters, digits, _ . -')
  .refine((name) => name !== directAccessServiceName, `${directAccessServiceName} is the service of direct access`);
const argvItem = z.string().min(1).max(4096).refine((text) => !text.includes('\u0000'), 'no NUL characters');

const appBody = z.strictObject({
  command: z.array(argvItem).min(1).max(64),
  port: servicePortField,
  protocol: z.enum(appProtocols).default('http'),
  url_path: z.string().max(512).regex(/^\/[^\s\u0000]*$/, 'a path starting with /').default('/'),
});

/** name → app, at most 32 of them. */
export const imageAppsField = z.record(appName, appBody)
  .refine((apps) => Object.keys(apps).length <= 32, 'at most 32 apps') as z.ZodType<ImageApps>;

/**
 * POST /api/v1/sessions/:id/services. `port` (seed 8.1) and `args.port` (seed 8.2) both ask for a
 * container port: give either, or both the same. Any name is accepted here: one the image does
 * not offer is AppNotFound (seed 8.4), not a malformed request.
 */
export const startServiceBody = z.strictObject({
  app_name: z.string().min(1).max(64),
  port: servicePortField.optional(),
  args: z.strictObject({ port: servicePortField.optional() }).optional(),
}).refine((body) => body.port === undefined || body.args?.port === undefined || body.port === body.args.port, { message: 'port and args.port differ', path: ['args', 'port'] });

export const serviceNameField = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'a service name');
