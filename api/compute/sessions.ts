import { z } from 'zod';
import { createServiceStore } from '../../activities/compute/serviceStore';
import { createComputeStore, type SessionDetailRow, type SessionRow } from '../../activities/compute/store';
import { makeComputeSessionWorkflowId } from '../../domain/compute/kind';
import { textWithoutNul, vfolderNameField, vfolderBody } from '../../domain/compute/params';
import { amountsView, formatSlots, scaleSlots } from '../../domain/compute/resources';
import { computeStatuses } from '../../domain/compute/status';
import { ownerScope } from '../platform/auth';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { ComputeRouteDeps } from './admin';
import { presentService, serviceView } from './serviceViews';

export const sessionsBase = '/api/v1/sessions';
const problemJson = 'application/problem+json';
const idParams = z.object({ id: z.uuid() });

const kernelView = z.object({ id: z.uuid(), role: z.enum(['main', 'sub']), idx: z.number(), hostname: z.string(), node: z.string().nullable(), status: z.string() });
export const sessionSummaryView = z.object({
  id: z.uuid(), name: z.string(), owner_id: z.uuid(), status: z.enum(computeStatuses), status_reason: z.string().nullable(), image: z.string(), scaling_group: z.string(),
  cluster: z.object({ mode: z.enum(['single-node', 'multi-node']), size: z.number() }),
  resources: amountsView, total_resources: amountsView, priority: z.number(),
  created_at: z.string(), started_at: z.string().nullable(), terminated_at: z.string().nullable(),
});
export const sessionView = sessionSummaryView.extend({
  workflow_id: z.string(),
  env: z.record(z.string(), z.string()),
  /** Names only: values never leave the sealed row except into the kernels. */
  secret_env: z.array(z.string()),
  vfolders: z.array(z.string()),
  bootstrap_script: z.string().nullable(),
  dependencies: z.array(z.uuid()),
  starts_at: z.string().nullable(),
  pending_deadline: z.string().nullable(),
  idle_timeout: z.number().nullable(),
  max_lifetime: z.number().nullable(),
  kernels: z.array(kernelView),
  abuse_warning: z.record(z.string(), z.unknown()).nullable().describe('the reconciler\'s last abuse warning (owner\'s action warn): at, looks, the abusing kernels\' figures, message'),
});
/** Session info adds the services that run in it (an ended session has none). */
const sessionInfoView = sessionView.extend({ services: z.array(serviceView) });
const historyView = z.object({
  session_id: z.uuid(),
  items: z.array(z.object({
    seq: z.number(), from: z.enum(computeStatuses).nullable(), to: z.enum(computeStatuses), reason: z.string().nullable(), at: z.string(),
    details: z.record(z.string(), z.unknown()).optional().describe('what the change carries beyond its reason, when it does (an end for abuse: the figures)'),
  })),
});
const graphView = z.object({
  root: z.uuid(),
  nodes: z.array(z.object({ id: z.uuid(), name: z.string(), status: z.enum(computeStatuses) })),
  edges: z.array(z.object({ session: z.uuid(), depends_on: z.uuid() })),
});
const vfolderView = z.object({ name: z.string(), mounted_by: z.number(), created_at: z.string() });

const listQuery = z.object({
  q: textWithoutNul(64).pipe(z.string().min(1)).optional(),
  status: z.enum(computeStatuses).optional(),
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(200).default(20),
});

const iso = (date: Date | null) => date?.toISOString() ?? null;
const isoMs = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function presentSessionSummary(row: SessionRow) {
  return {
    id: row.id, name: row.name, owner_id: row.owner_id, status: row.status, status_reason: row.status_reason, image: row.image, scaling_group: row.scaling_group,
    cluster: { mode: row.cluster_mode, size: row.cluster_size },
    resources: formatSlots(row.resources), total_resources: formatSlots(scaleSlots(row.resources, row.cluster_size)), priority: row.priority,
    created_at: row.created_at.toISOString(), started_at: iso(row.started_at), terminated_at: iso(row.terminated_at),
  };
}

/** Session info (seed 19): the read model, secret values never included. */
export function presentSession(row: SessionDetailRow) {
  const p = row.params;
  return {
    ...presentSessionSummary(row),
    workflow_id: makeComputeSessionWorkflowId(row.id),
    env: p.env, secret_env: p.secret_env_names, vfolders: p.vfolders, bootstrap_script: p.bootstrap_script ?? null, dependencies: row.dependencies,
    starts_at: isoMs(p.starts_at_ms), pending_deadline: isoMs(p.pending_deadline_ms), idle_timeout: p.idle_timeout ?? null, max_lifetime: p.max_lifetime ?? null,
    kernels: row.kernels.map((k) => ({ id: k.id, role: k.role, idx: k.idx, hostname: k.hostname, node: k.node, status: k.status })),
    abuse_warning: row.abuse_warning,
  };
}

export const sessionNotFound = (id: string) => new ApiError('SessionNotFound', `no compute session ${id}`);

/** Reads of compute sessions (match, info, status history, dependency graph) and the user's vfolders; another user's session is a 404. */
export function registerComputeSessionReadRoutes(api: ApiRoutes, deps: ComputeRouteDeps): void {
  const store = createComputeStore(deps.pool, deps.compute);
  const services = createServiceStore(deps.pool, deps.compute.sealer);

  api.route(
    {
      method: 'get', path: sessionsBase, summary: 'Match sessions: q is an id or name prefix; own sessions (an admin\'s: all), newest first, with a status filter and pagination',
      tag: 'compute', access: 'user', query: listQuery,
      responses: { 200: { description: 'a page of sessions', schema: z.object({ items: z.array(sessionSummaryView), page: z.number(), page_size: z.number(), total: z.number() }) } },
    },
    async ({ query, principal, res }) => {
      const { rows, total } = await store.listSessions({ owner: ownerScope(principal), q: query.q, status: query.status, page: query.page, pageSize: query.page_size });
      res.json({ items: rows.map(presentSessionSummary), page: query.page, page_size: query.page_size, total });
    },
  );

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id`, summary: 'Session info: status and reason, image, resources, cluster, kernels and their nodes, env (secret names only), times',
      tag: 'compute', access: 'user', params: idParams, responses: { 200: { description: 'the session', schema: sessionInfoView }, 404: { description: 'SessionNotFound', contentType: problemJson } },
    },
    async ({ params, principal, res }) => {
      const row = await store.session(params.id, ownerScope(principal));
      if (!row) throw sessionNotFound(params.id);
      res.json({ ...presentSession(row), services: (await services.sessionServices(params.id)).map((service) => presentService(service, services)) });
    },
  );

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/status-history`, summary: 'Every status change of a session: from, to, reason, time', tag: 'compute', access: 'user', params: idParams,
      responses: { 200: { description: 'the history, oldest first', schema: historyView }, 404: { description: 'SessionNotFound', contentType: problemJson } },
    },
    async ({ params, principal, res }) => {
      const rows = await store.statusHistory(params.id, ownerScope(principal));
      if (!rows) throw sessionNotFound(params.id);
      res.json({ session_id: params.id, items: rows.map((row) => ({ seq: row.seq, from: row.from_status, to: row.to_status, reason: row.reason, at: row.at.toISOString(), ...(row.details && { details: row.details }) })) });
    },
  );

  api.route(
    {
      method: 'get', path: `${sessionsBase}/:id/dependency-graph`, summary: 'What a session waits for, recursively: the sessions reached and the edges (session → depends_on)',
      tag: 'compute', access: 'user', params: idParams, responses: { 200: { description: 'the graph', schema: graphView }, 404: { description: 'SessionNotFound', contentType: problemJson } },
    },
    async ({ params, principal, res }) => {
      const graph = await store.dependencyGraph(params.id, ownerScope(principal));
      if (!graph) throw sessionNotFound(params.id);
      res.json(graph);
    },
  );

  // ---- vfolders: always the caller's own ----
  const presentVfolder = (row: { name: string; mounted_by?: number; created_at: Date }) => ({ name: row.name, mounted_by: row.mounted_by ?? 0, created_at: row.created_at.toISOString() });

  api.route(
    { method: 'get', path: '/api/v1/vfolders', summary: 'Your vfolders, with how many live sessions mount each', tag: 'compute', access: 'user', responses: { 200: { description: 'vfolders', schema: z.object({ items: z.array(vfolderView) }) } } },
    async ({ principal, res }) => {
      res.json({ items: (await store.vfolders(principal.userId)).map(presentVfolder) });
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/vfolders', summary: 'Create a vfolder (a session naming one you lack creates it too)', tag: 'compute', access: 'user', body: vfolderBody,
      responses: { 201: { description: 'created', schema: vfolderView }, 200: { description: 'it existed', schema: vfolderView } },
    },
    async ({ body, principal, res }) => {
      const { row, created } = await store.createVfolder(principal.userId, body.name);
      res.status(created ? 201 : 200).location(`/api/v1/vfolders/${row.name}`).json(presentVfolder(row));
    },
  );

  api.route(
    {
      method: 'delete', path: '/api/v1/vfolders/:name', summary: 'Forget a vfolder no live session mounts', tag: 'compute', access: 'user', params: z.object({ name: vfolderNameField }),
      responses: { 204: { description: 'removed' }, 404: { description: 'NotFound', contentType: problemJson }, 409: { description: 'VFolderInUse', contentType: problemJson } },
    },
    async ({ params, principal, res }) => {
      const outcome = await store.deleteVfolder(principal.userId, params.name);
      if (outcome === 'missing') throw new ApiError('NotFound', `no vfolder ${params.name}`);
      if (outcome === 'in-use') throw new ApiError('VFolderInUse', `a live session mounts vfolder ${params.name}`, { vfolder: params.name });
      res.status(204).end();
    },
  );
}
