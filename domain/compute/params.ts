import { z } from 'zod';
import { imageAppsField } from './apps';
import { abuseActions } from './abuse';
import { clusterModes, type ClusterMode } from './compute';
import { cpuField, gpuField, memoryField, slotsBody } from './resources';
import { mergeTemplate } from './templates';

/**
 * The bodies of the compute api, as zod schemas: strict objects (an unknown field is an
 * error naming it), amounts parsed by resources.ts. The create schema is the one truth of
 * what a session may ask for: create-from-template validates its merge result with it.
 */

/** name:tag as users write it (the compute_images check). */
export const imageNamePattern = /^[a-z0-9][a-z0-9._/-]{0,127}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const imageNameField = z.string().regex(imageNamePattern, 'an image name:tag such as python:3.11');

/** A session's name: unique among the owner's live sessions. */
export const sessionNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const sessionNameField = z.string().regex(sessionNamePattern, '1-64 letters, digits, _ . - (starting with a letter or digit)');

export const vfolderNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const vfolderNameField = z.string().regex(vfolderNamePattern, '1-64 letters, digits, _ . - (starting with a letter or digit)');

export const scalingGroupNameField = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, '1-63 lowercase letters, digits, _ . -');
export const templateIdField = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, '1-63 lowercase letters, digits, _ . -');

/**
 * Names of environment variables; SF_ is the platform's own prefix (cluster variables such as
 * SF_CLUSTER_HOSTS), which a user's value must not shadow.
 */
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name').refine((name) => !name.startsWith('SF_'), 'SF_ is reserved for the platform\'s variables');
/** Text that reaches PostgreSQL (jsonb, text): NUL is the one character it cannot hold. */
export const textWithoutNul = (max: number) => z.string().max(max, `at most ${max} characters`).refine((text) => !text.includes('\u0000'), 'no NUL characters');
const envMap = (maxEntries: number) => z.record(envName, textWithoutNul(8192))
  .refine((env) => Object.keys(env).length <= maxEntries, `at most ${maxEntries} variables`);

export const maxClusterSize = 64;
const seconds = (max: number) => z.number().int().min(1).max(max);
const uniqueList = <T extends z.ZodType<string>>(item: T, max: number) => z.array(item).max(max).refine((list) => new Set(list).size === list.length, 'no duplicates');

/** `mpi` (seed 3.1) is a cluster whose kernels reach each other by hostname over SSH: a single-node cluster here. */
const clusterModeField = z.enum([...clusterModes, 'mpi']).transform((mode): ClusterMode => (mode === 'mpi' ? 'single-node' : mode));

const sessionParamsShape = {
  image: imageNameField,
  session_name: sessionNameField.optional(),
  /** Absent slots take the image's defaults. */
  resources: z.strictObject({ cpu: cpuField.optional(), memory: memoryField.optional(), gpu: gpuField.optional() }).default({}),
  env: envMap(64).default({}),
  secret_env: envMap(32).default({}),
  vfolders: uniqueList(vfolderNameField, 16).default([]),
  bootstrap_script: textWithoutNul(65_536).pipe(z.string().min(1)).optional(),
  /** Seconds the bootstrap script may run before the session fails with BootstrapFailed. */
  bootstrap_timeout: seconds(24 * 3600).default(1800),
  scaling_group: scalingGroupNameField.default('default'),
  enqueue_only: z.boolean().default(false),
  /** Seconds a session may stay PENDING (counted from starts_at when that is later): CANCELLED after. */
  max_wait: seconds(7 * 24 * 3600).optional(),
  starts_at: z.iso.datetime({ offset: true }).refine((at) => !(Date.parse(at) > Date.now() + 365 * 24 * 3600 * 1000), 'at most a year ahead').optional(),
  cluster_mode: clusterModeField.default('single-node'),
  cluster_size: z.number().int().min(1).max(maxClusterSize).default(1),
  dependencies: uniqueList(z.uuid(), 16).default([]),
  idle_timeout: seconds(30 * 24 * 3600).optional(),
  max_lifetime: seconds(365 * 24 * 3600).optional(),
  priority: z.number().int().min(0).max(100).default(0),
};

const withoutSharedNames = (params: { env: Record<string, string>; secret_env: Record<string, string> }, ctx: z.RefinementCtx) => {
  for (const name of Object.keys(params.secret_env)) {
    if (Object.hasOwn(params.env, name)) ctx.addIssue({ code: 'custom', path: ['secret_env', name], message: 'also in env: a variable is plain or secret, not both' });
  }
};

/**
 * Create from params. Backend.AI's clients say `image_name` (seed 1.1): taken as `image`.
 */
export const createSessionBody = z.preprocess(
  (body) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !('image_name' in body) || 'image' in body) return body;
    const { image_name: image, ...rest } = body as Record<string, unknown>;
    return { image, ...rest };
  },
  z.strictObject(sessionParamsShape).superRefine(withoutSharedNames),
);
export type CreateSessionParams = z.infer<typeof createSessionBody>;

/** A template's params: what a create body holds, every field optional (the request's overrides may add the rest). */
export const templateParamsBody = z.record(z.string(), z.unknown()).superRefine((params, ctx) => {
  // A template is readable by every user: a secret belongs in the request's overrides, sealed with its session.
  if ('secret_env' in params) ctx.addIssue({ code: 'custom', path: ['secret_env'], message: 'templates hold no secrets: give secret_env in the overrides of each create' });
  // Each field present must be valid as it is (and known); a missing one is the overrides' to give.
  const checked = z.strictObject(sessionParamsShape).partial().safeParse(params);
  if (!checked.success) for (const issue of checked.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
});

export const createFromTemplateBody = z.strictObject({
  template_id: templateIdField,
  overrides: z.record(z.string(), z.unknown()).default({}),
});

export const templateBody = z.strictObject({ params: templateParamsBody });

/** An image's reference (what nodes pull) and the resources a session of it gets unless it asks otherwise. */
export const imageBody = z.strictObject({
  name: imageNameField,
  reference: z.string().min(1).max(512).regex(/^[\w][\w.:/@-]*$/, 'a Docker image reference such as 127.0.0.1:5000/sessionflow/kernel-python:bookworm'),
  resources: slotsBody({ positive: true }).optional(),
  /** name → {command, port, protocol, url_path}: what sessions of the image may start as services. */
  apps: imageAppsField.optional(),
});

/** A user's resource policy: live sessions at once, and the total of their resources (× cluster size). 0 refuses every session. */
const percentOfAllocation = z.number().gt(0).max(100);
export const resourcePolicyBody = z.strictObject({
  max_sessions: z.number().int().min(0).max(10_000),
  resources: slotsBody({ positive: false }),
  /** Images of their own (converted sessions) the user may hold; absent: the configured default. */
  max_customized_images: z.number().int().min(0).max(10_000).optional(),
  // In % of a kernel's allocation; one left out follows the configured default (COMPUTE_DEFAULT_ABUSE_*).
  abuse_cpu_warning_percent: percentOfAllocation.optional(),
  abuse_cpu_percent: percentOfAllocation.optional(),
  abuse_memory_percent: percentOfAllocation.optional(),
  abuse_action: z.enum(abuseActions).optional(),
});

export const scalingGroupBody = z.strictObject({
  name: scalingGroupNameField,
  description: z.string().max(1000).default(''),
});

export const nodePatchBody = z.strictObject({ schedulable: z.boolean() });

export const vfolderBody = z.strictObject({ name: vfolderNameField });

/** Modify (the lead's write route): any of name, priority and idle timeout (0 turns it off). */
export const modifySessionBody = z.strictObject({
  name: sessionNameField.optional(),
  priority: z.number().int().min(0).max(100).optional(),
  idle_timeout: z.number().int().min(0).max(30 * 24 * 3600).optional(),
}).refine((body) => Object.keys(body).length > 0, 'give at least one of name, priority, idle_timeout');

/**
 * Create from a template: the template's params with the overrides merged in (templates.ts),
 * validated as a create body. Errors name the field under `body.overrides`, where the caller
 * can change it.
 */
export function sessionParamsFromTemplate(templateParams: Record<string, unknown>, overrides: Record<string, unknown>):
  { success: true; data: CreateSessionParams } | { success: false; errors: { field: string; message: string }[] } {
  const result = createSessionBody.safeParse(mergeTemplate(templateParams, overrides));
  if (result.success) return { success: true, data: result.data };
  return { success: false, errors: result.error.issues.map((issue) => ({ field: ['body', 'overrides', ...issue.path.map(String)].join('.'), message: issue.message })) };
}
