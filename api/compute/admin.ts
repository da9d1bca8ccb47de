import type { Pool } from 'pg';
import { z } from 'zod';
import { createAbuseStore } from '../../activities/compute/abuseStore';
import { createCommitStore } from '../../activities/compute/commitStore';
import { abuseDefaultsOf, createComputeStore, type ComputeStore, type ComputeStoreSettings, type ImageRow, type NodeRow, type TemplateRow } from '../../activities/compute/store';
import { defaultMaxCustomizedImages } from '../../domain/compute/imageCommit';
import { imageBody, imageNameField, nodePatchBody, resourcePolicyBody, scalingGroupBody, scalingGroupNameField, templateBody, templateIdField } from '../../domain/compute/params';
import { amountsView, formatSlots, subtractSlots } from '../../domain/compute/resources';
import { appProtocols, defaultKernelApps } from '../../domain/compute/services';
import type { Config } from '../../platform/config';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import { abusePolicyView, presentAbusePolicy } from './abuse';

export interface ComputeRouteDeps {
  pool: Pool;
  compute: ComputeStoreSettings;
}

const admin = '/api/v1/admin';
const problemJson = 'application/problem+json';

const appView = z.object({ command: z.array(z.string()), port: z.number(), protocol: z.enum(appProtocols), url_path: z.string() });
export const imageView = z.object({ name: z.string(), reference: z.string(), resources: amountsView, apps: z.record(z.string(), appView).describe('what sessions of the image may start as services'), created_at: z.string() });
const templateView = z.object({ id: z.string(), params: z.record(z.string(), z.unknown()), created_at: z.string(), updated_at: z.string() });
const policyView = z.object({
  user_id: z.uuid(), max_sessions: z.number(), resources: amountsView, default: z.boolean(), max_customized_images: z.number(),
  usage: z.object({ sessions: z.number(), resources: amountsView, customized_images: z.number() }),
}).extend(abusePolicyView.shape);
const scalingGroupView = z.object({ name: z.string(), description: z.string(), nodes: z.number(), created_at: z.string() });
const nodeView = z.object({
  name: z.string(), scaling_group: z.string(), task_queue: z.string(), capacity: amountsView, used: amountsView, free: amountsView,
  alive: z.boolean(), schedulable: z.boolean(), registered_at: z.string(), last_heartbeat_at: z.string(),
});

export const presentImage = (row: ImageRow) => ({ name: row.name, reference: row.reference, resources: formatSlots(row.resources), apps: row.apps, created_at: row.created_at.toISOString() });
export const presentTemplate = (row: TemplateRow) => ({ id: row.id, params: row.params, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() });
const presentNode = (row: NodeRow) => ({
  name: row.name, scaling_group: row.scaling_group, task_queue: row.task_queue,
  capacity: formatSlots(row.capacity), used: formatSlots(row.used), free: formatSlots(clampAtZero(subtractSlots(row.capacity, row.used))),
  alive: row.alive, schedulable: row.schedulable, registered_at: row.registered_at.toISOString(), last_heartbeat_at: row.last_heartbeat_at.toISOString(),
});
const clampAtZero = ({ cpuMillis, memoryBytes, gpu }: { cpuMillis: number; memoryBytes: number; gpu: number }) => ({ cpuMillis: Math.max(0, cpuMillis), memoryBytes: Math.max(0, memoryBytes), gpu: Math.max(0, gpu) });

// Image names hold ':' and '/': in a path, '/' is sent as %2F (Express decodes the parameter).
const imageParams = z.object({ name: imageNameField });
const templateParams = z.object({ id: templateIdField });
const userParams = z.object({ userId: z.uuid() });
const groupParams = z.object({ name: scalingGroupNameField });
const nodeParams = z.object({ name: scalingGroupNameField });

async function requireTemplate(store: ComputeStore, id: string): Promise<TemplateRow> {
  const row = await store.template(id);
  if (!row) throw new ApiError('TemplateNotFound', `no session template ${id}`, { template_id: id });
  return row;
}

/**
 * The built-in images a fresh system can start sessions from without an admin step, written at
 * api start where no row exists (an admin's own setting of the same name stays).
 */
export async function seedBuiltInImages(store: ComputeStore, config: Pick<Config, 'COMPUTE_KERNEL_IMAGE'>): Promise<void> {
  await store.seedImage({ name: 'python:3.11', reference: config.COMPUTE_KERNEL_IMAGE, resources: { cpuMillis: 1000, memoryBytes: 256 * 2 ** 20, gpu: 0 }, apps: defaultKernelApps });
}

/** Reference data of compute sessions (admin): images, templates, resource policies, scaling groups, nodes; and templates for every user. */
export function registerComputeAdminRoutes(api: ApiRoutes, deps: ComputeRouteDeps): void {
  const store = createComputeStore(deps.pool, deps.compute);
  const abuse = createAbuseStore(deps.pool, deps.compute);
  const commits = createCommitStore(deps.pool);

  // ---- images ----
  api.route(
    {
      method: 'post', path: `${admin}/images`, summary: 'Create or replace an image: name:tag, the reference nodes pull, default resources, the apps its sessions may start', tag: 'compute', access: 'admin', body: imageBody,
      responses: { 201: { description: 'created', schema: imageView }, 200: { description: 'replaced', schema: imageView } },
    },
    async ({ body, res }) => {
      const { created } = await store.upsertImage(body);
      res.status(created ? 201 : 200).location(`${admin}/images/${encodeURIComponent(body.name)}`).json(presentImage((await store.image(body.name))!));
    },
  );

  api.route(
    { method: 'get', path: `${admin}/images`, summary: 'List images', tag: 'compute', access: 'admin', responses: { 200: { description: 'images', schema: z.object({ items: z.array(imageView) }) } } },
    async ({ res }) => {
      res.json({ items: (await store.images()).map(presentImage) });
    },
  );

  api.route(
    {
      method: 'get', path: `${admin}/images/:name`, summary: 'An image (name URL-encoded: python%3A3.11, a/b as a%2Fb)', tag: 'compute', access: 'admin', params: imageParams,
      responses: { 200: { description: 'the image', schema: imageView }, 404: { description: 'ImageNotFound', contentType: problemJson } },
    },
    async ({ params, res }) => {
      const row = await store.image(params.name);
      if (!row) throw new ApiError('ImageNotFound', `no image ${params.name}`, { image: params.name });
      res.json(presentImage(row));
    },
  );

  api.route(
    {
      method: 'delete', path: `${admin}/images/:name`, summary: 'Remove an image (sessions made from it keep running)', tag: 'compute', access: 'admin', params: imageParams,
      responses: { 204: { description: 'removed' }, 404: { description: 'ImageNotFound', contentType: problemJson } },
    },
    async ({ params, res }) => {
      if (!(await store.deleteImage(params.name))) throw new ApiError('ImageNotFound', `no image ${params.name}`, { image: params.name });
      res.status(204).end();
    },
  );

  // ---- templates ----
  api.route(
    {
      method: 'put', path: `${admin}/templates/:id`, summary: 'Create or replace a session template: create params, any field optional', tag: 'compute', access: 'admin', params: templateParams, body: templateBody,
      responses: { 201: { description: 'created', schema: templateView }, 200: { description: 'replaced', schema: templateView } },
    },
    async ({ params, body, res }) => {
      const { row, created } = await store.putTemplate(params.id, body.params);
      res.status(created ? 201 : 200).location(`${admin}/templates/${params.id}`).json(presentTemplate(row));
    },
  );

  for (const [base, access, who] of [[`${admin}/templates`, 'admin', 'admin'], ['/api/v1/session-templates', 'user', 'users']] as const) {
    api.route(
      { method: 'get', path: base, summary: `List session templates (${who})`, tag: 'compute', access, responses: { 200: { description: 'templates', schema: z.object({ items: z.array(templateView) }) } } },
      async ({ res }) => {
        res.json({ items: (await store.templates()).map(presentTemplate) });
      },
    );
    api.route(
      {
        method: 'get', path: `${base}/:id`, summary: `A session template (${who})`, tag: 'compute', access, params: templateParams,
        responses: { 200: { description: 'the template', schema: templateView }, 404: { description: 'TemplateNotFound', contentType: problemJson } },
      },
      async ({ params, res }) => {
        res.json(presentTemplate(await requireTemplate(store, params.id)));
      },
    );
  }

  api.route(
    {
      method: 'delete', path: `${admin}/templates/:id`, summary: 'Remove a session template', tag: 'compute', access: 'admin', params: templateParams,
      responses: { 204: { description: 'removed' }, 404: { description: 'TemplateNotFound', contentType: problemJson } },
    },
    async ({ params, res }) => {
      if (!(await store.deleteTemplate(params.id))) throw new ApiError('TemplateNotFound', `no session template ${params.id}`, { template_id: params.id });
      res.status(204).end();
    },
  );

  // ---- resource policies ----
  const presentPolicy = async (userId: string) => {
    const [policy, usage, abusePolicy, images] = await Promise.all([
      store.policy(userId), store.usage(userId), abuse.policy(userId), commits.customizedImages(userId, deps.compute.defaultMaxCustomizedImages ?? defaultMaxCustomizedImages),
    ]);
    return {
      user_id: userId, max_sessions: policy.maxSessions, resources: formatSlots(policy.resources), default: policy.isDefault, max_customized_images: images.limit,
      usage: { sessions: usage.sessions, resources: formatSlots(usage.resources), customized_images: images.held }, ...presentAbusePolicy(abusePolicy),
    };
  };
  const requireUser = async (userId: string) => {
    if (!(await store.userExists(userId))) throw new ApiError('UserNotFound', `no user ${userId}`);
  };

  api.route(
    {
      method: 'get', path: `${admin}/resource-policies/:userId`, summary: 'A user\'s resource policy (the configured default when none was set) and what their live sessions hold',
      tag: 'compute', access: 'admin', params: userParams, responses: { 200: { description: 'the policy', schema: policyView }, 404: { description: 'UserNotFound', contentType: problemJson } },
    },
    async ({ params, res }) => {
      await requireUser(params.userId);
      res.json(await presentPolicy(params.userId));
    },
  );

  api.route(
    {
      method: 'put', path: `${admin}/resource-policies/:userId`, summary: 'Set a user\'s resource policy: live sessions at once, total cpu, memory, gpu (× cluster size); abuse thresholds (% of a kernel\'s allocation) and action',
      tag: 'compute', access: 'admin', params: userParams, body: resourcePolicyBody, responses: { 200: { description: 'the policy', schema: policyView }, 404: { description: 'UserNotFound', contentType: problemJson } },
    },
    async ({ params, body, res }) => {
      await requireUser(params.userId);
      // A kernel warns before it abuses: the warning threshold, given or default, is at most the abusing one.
      const defaults = abuseDefaultsOf(deps.compute);
      const [warning, abusing] = [body.abuse_cpu_warning_percent ?? defaults.cpuWarningPercent, body.abuse_cpu_percent ?? defaults.cpuPercent];
      if (warning > abusing) {
        throw new ApiError('ValidationFailed', `abuse_cpu_warning_percent ${warning} is above abuse_cpu_percent ${abusing}`, {
          errors: [{ field: 'body.abuse_cpu_warning_percent', message: `at most abuse_cpu_percent (${abusing})` }],
        });
      }
      await store.setPolicy(params.userId, {
        maxSessions: body.max_sessions, resources: body.resources,
        abuse: { cpuWarningPercent: body.abuse_cpu_warning_percent, cpuPercent: body.abuse_cpu_percent, memoryPercent: body.abuse_memory_percent, action: body.abuse_action },
        maxCustomizedImages: body.max_customized_images,
      });
      res.json(await presentPolicy(params.userId));
    },
  );

  api.route(
    {
      method: 'delete', path: `${admin}/resource-policies/:userId`, summary: 'Give a user the configured default policy again (idempotent)', tag: 'compute', access: 'admin', params: userParams,
      responses: { 204: { description: 'back to the default' }, 404: { description: 'UserNotFound', contentType: problemJson } },
    },
    async ({ params, res }) => {
      await requireUser(params.userId);
      await store.deletePolicy(params.userId);
      res.status(204).end();
    },
  );

  // ---- scaling groups and nodes ----
  api.route(
    { method: 'get', path: `${admin}/scaling-groups`, summary: 'List scaling groups with their node counts', tag: 'compute', access: 'admin', responses: { 200: { description: 'scaling groups', schema: z.object({ items: z.array(scalingGroupView) }) } } },
    async ({ res }) => {
      res.json({ items: (await store.scalingGroups()).map((row) => ({ ...row, created_at: row.created_at.toISOString() })) });
    },
  );

  api.route(
    {
      method: 'post', path: `${admin}/scaling-groups`, summary: 'Create a scaling group (nodes join it by naming it when they register)', tag: 'compute', access: 'admin', body: scalingGroupBody,
      responses: { 201: { description: 'created', schema: scalingGroupView } },
    },
    async ({ body, res }) => {
      if (!(await store.createScalingGroup(body.name, body.description))) {
        throw new ApiError('ValidationFailed', `a scaling group ${body.name} exists`, { errors: [{ field: 'body.name', message: 'already taken' }] });
      }
      const row = (await store.scalingGroups()).find((group) => group.name === body.name)!;
      res.status(201).location(`${admin}/scaling-groups/${body.name}`).json({ ...row, created_at: row.created_at.toISOString() });
    },
  );

  api.route(
    {
      method: 'delete', path: `${admin}/scaling-groups/:name`, summary: 'Remove a scaling group no node and no live session uses', tag: 'compute', access: 'admin', params: groupParams,
      responses: { 204: { description: 'removed' }, 404: { description: 'NotFound', contentType: problemJson }, 409: { description: 'ScalingGroupInUse', contentType: problemJson } },
    },
    async ({ params, res }) => {
      const outcome = await store.deleteScalingGroup(params.name);
      if (outcome === 'missing') throw new ApiError('NotFound', `no scaling group ${params.name}`);
      if (outcome === 'in-use') throw new ApiError('ScalingGroupInUse', `nodes or live sessions use scaling group ${params.name}`, { scaling_group: params.name });
      res.status(204).end();
    },
  );

  api.route(
    {
      method: 'get', path: `${admin}/nodes`, summary: 'List compute nodes: declared capacity, what live sessions hold, free, alive (recent heartbeat), schedulable',
      tag: 'compute', access: 'admin', responses: { 200: { description: 'nodes', schema: z.object({ items: z.array(nodeView) }) } },
    },
    async ({ res }) => {
      res.json({ items: (await store.nodes()).map(presentNode) });
    },
  );

  api.route(
    {
      method: 'patch', path: `${admin}/nodes/:name`, summary: 'Stop or resume placing new kernels on a node (its running kernels stay)', tag: 'compute', access: 'admin', params: nodeParams, body: nodePatchBody,
      responses: { 200: { description: 'the node', schema: nodeView }, 404: { description: 'NotFound', contentType: problemJson } },
    },
    async ({ params, body, res }) => {
      if (!(await store.setSchedulable(params.name, body.schedulable))) throw new ApiError('NotFound', `no node ${params.name}`);
      res.json(presentNode((await store.nodes()).find((node) => node.name === params.name)!));
    },
  );
}
