import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import { z } from 'zod';
import { createPxeStore, type SessionRow } from '../../activities/pxe/store';
import { makePxeWorkflowId, planPxeSession, pxeBusyStatuses, pxeSessionStatuses, pxeSessionTypes, stopPxeSessionUpdate, type PxeSessionStatus } from '../../domain/pxe/pxe';
import { MachineMac } from '../../domain/shared/searchAttributes';
import type { pxeSessionWorkflow } from '../../workflows/pxe/pxeSession';
import { problem, sendProblem, ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import { ownerScope } from '../platform/auth';
import { macField, pxeBase, type PxeRouteDeps } from './resources';
import { pxeSessionKind } from '../../domain/pxe/kind';
import { sessionStartOptions } from '../../domain/shared/kind';

const idParams = z.object({ id: z.uuid() });

const startBody = z.strictObject({
  machine_id: z.uuid(),
  image_id: z.uuid(),
  session_type: z.enum(pxeSessionTypes).default('DISKLESS_BOOT'),
  description: z.string().max(1000).default(''),
});

const sessionView = z.object({
  id: z.uuid(), machine_id: z.uuid(), image_id: z.uuid(), session_type: z.enum(pxeSessionTypes), description: z.string(), status: z.enum(pxeSessionStatuses),
  error: z.object({ type: z.string(), message: z.string(), step: z.string().optional() }).nullable(), workflow_id: z.string(),
  created_at: z.string(), started_at: z.string().nullable(), stopped_at: z.string().nullable(),
});

const listQuery = z.object({
  status: z.enum(pxeSessionStatuses).optional(),
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(200).default(20),
});

const statsView = z.object({ by_status: z.record(z.string(), z.number()), total: z.number(), active: z.number() });

const presentSession = (row: SessionRow) => ({
  ...row,
  created_at: row.created_at.toISOString(),
  started_at: row.started_at?.toISOString() ?? null,
  stopped_at: row.stopped_at?.toISOString() ?? null,
});
const finished: PxeSessionStatus[] = ['STOPPED', 'FAILED'];

/** PXE sessions: start, stop, list, stats, and the active session's boot script (also over HTTP for iPXE). */
export function registerPxeSessionRoutes(api: ApiRoutes, deps: PxeRouteDeps): void {
  const { temporal } = deps;
  const store = createPxeStore(deps.pool);

  api.route(
    {
      method: 'post', path: `${pxeBase}/sessions/start`, summary: 'Start a diskless-boot session: disk, iSCSI target, iPXE script, DHCP entry (a saga)', tag: 'pxe', access: 'user', body: startBody,
      responses: {
        202: { description: 'starting; poll the session until ACTIVE or FAILED', schema: sessionView },
        400: { description: 'MachineNotFound, ImageNotReady or ValidationFailed', contentType: 'application/problem+json' },
        409: { description: 'MachineBusy: the machine is in an active session', contentType: 'application/problem+json' },
      },
    },
    async ({ body, principal, res }) => {
      const owner = ownerScope(principal);
      const machine = await store.machine(body.machine_id, owner);
      if (!machine) throw new ApiError('MachineNotFound', `no machine ${body.machine_id}`, { machine_id: body.machine_id });
      const image = await store.image(body.image_id, owner);
      if (!image) throw new ApiError('ImageNotFound', `no image ${body.image_id}`);
      if (image.status !== 'READY') throw new ApiError('ImageNotReady', `image ${image.name} is ${image.status}`, { image_status: image.status });
      if (image.boot_server_id !== machine.boot_server_id) {
        throw new ApiError('ValidationFailed', 'the image lives on another boot server than the machine', { errors: [{ field: 'body.image_id', message: 'not on the machine\'s boot server' }] });
      }

      const workflowId = makePxeWorkflowId(machine.id);
      let row;
      try {
        row = await store.createSession({ ownerId: principal.userId, machineId: machine.id, imageId: body.image_id, sessionType: body.session_type, description: body.description, workflowId });
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw machineBusy(machine.id);
        throw err;
      }
      try {
        await temporal.workflow.start<typeof pxeSessionWorkflow>(pxeSessionKind.workflowType, {
          ...sessionStartOptions(pxeSessionKind, {
            key: [machine.id], taskQueue: deps.taskQueue, status: 'STARTING', ownerId: principal.userId,
            attributes: [{ key: MachineMac, value: machine.mac }],
            summary: `PXE session ${row.id} on ${machine.name} (${machine.mac})`,
            details: `Requested by ${principal.name}${body.description ? `: ${body.description}` : ''}`,
          }),
          args: [{ sessionId: row.id, machineId: machine.id, ownerId: principal.userId }],
          // One session per machine at a time; a finished one leaves the id free for the next.
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        });
      } catch (err) {
        await store.deleteSession(row.id);
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw machineBusy(machine.id);
        throw err;
      }
      res.status(202).location(`${pxeBase}/sessions/${row.id}`).json(presentSession(row));
    },
  );

  api.route(
    {
      method: 'post', path: `${pxeBase}/sessions/:id/stop`, summary: 'Stop a session: everything it set up is removed, in reverse (idempotent)', tag: 'pxe', access: 'user', params: idParams,
      responses: { 200: { description: 'the session, STOPPED (or FAILED when teardown failed)', schema: sessionView } },
    },
    async ({ params, principal, res }) => {
      const read = () => store.session(params.id, ownerScope(principal));
      const row = await read();
      if (!row) throw new ApiError('SessionNotFound', `no PXE session ${params.id}`);
      if (!finished.includes(row.status)) {
        try {
          await temporal.workflow.getHandle(row.workflow_id).executeUpdate(stopPxeSessionUpdate, { args: [{}] });
        } catch (err) {
          // The workflow finished between the read and the update: its row has the outcome.
          const again = await read();
          if (!again || !finished.includes(again.status)) throw err;
        }
      }
      res.json(presentSession((await read())!));
    },
  );

  api.route(
    {
      method: 'get', path: `${pxeBase}/sessions`, summary: 'List sessions, newest first, with pagination and a status filter', tag: 'pxe', access: 'user', query: listQuery,
      responses: { 200: { description: 'a page of sessions', schema: z.object({ items: z.array(sessionView), page: z.number(), page_size: z.number(), total: z.number() }) } },
    },
    async ({ query, principal, res }) => {
      const { rows, total } = await store.sessionsPage({ status: query.status, page: query.page, pageSize: query.page_size }, ownerScope(principal));
      res.json({ items: rows.map(presentSession), page: query.page, page_size: query.page_size, total });
    },
  );

  api.route(
    { method: 'get', path: `${pxeBase}/sessions/stats`, summary: 'Session counts per status, total and active', tag: 'pxe', access: 'user', responses: { 200: { description: 'statistics', schema: statsView } } },
    async ({ principal, res }) => {
      const rows = await store.sessionCountsByStatus(ownerScope(principal));
      const byStatus = Object.fromEntries(pxeSessionStatuses.map((status) => [status, rows.find((r) => r.status === status)?.count ?? 0]));
      res.json({ by_status: byStatus, total: rows.reduce((sum, r) => sum + r.count, 0), active: byStatus.ACTIVE });
    },
  );

  api.route(
    { method: 'get', path: `${pxeBase}/sessions/:id`, summary: 'A session', tag: 'pxe', access: 'user', params: idParams, responses: { 200: { description: 'the session', schema: sessionView } } },
    async ({ params, principal, res }) => {
      const row = await store.session(params.id, ownerScope(principal));
      if (!row) throw new ApiError('SessionNotFound', `no PXE session ${params.id}`);
      res.json(presentSession(row));
    },
  );

  api.route(
    {
      method: 'get', path: `${pxeBase}/machines/:id/boot-script`, summary: "The active session's iPXE script for a machine, with its iSCSI details", tag: 'pxe', access: 'user', params: idParams,
      responses: { 200: { description: 'the script', schema: z.object({ machine_id: z.uuid(), session_id: z.uuid(), filename: z.string(), script: z.string(), iscsi: z.object({ portal: z.string(), lun: z.number(), target_iqn: z.string(), initiator_iqn: z.string() }) }) } },
    },
    async ({ params, principal, res }) => {
      const row = await store.machineBoot(params.id, ownerScope(principal));
      if (!row) throw new ApiError('NotFound', `no machine ${params.id}`);
      if (!row.session_id) throw new ApiError('NotFound', `machine ${params.id} is in no active session`);
      const plan = planPxeSession({
        sessionId: row.session_id,
        machine: { id: row.id, name: row.name, mac: row.mac, ip: row.ip, tid: row.tid },
        image: { rawPath: '' },
        bootServer: { id: row.bs_id, targetDriver: row.target_driver, portalIp: row.portal_ip, iqnPrefix: row.iqn_prefix, imageDir: row.image_dir, tgtControlPort: row.tgt_control_port },
      });
      res.json({
        machine_id: row.id, session_id: row.session_id, filename: plan.scriptPath, script: row.boot_script,
        iscsi: { portal: plan.portalIp, lun: plan.lun, target_iqn: plan.target.targetIqn, initiator_iqn: plan.target.initiatorIqn },
      });
    },
  );

  api.route(
    {
      method: 'get', path: `${pxeBase}/boot/:mac`, summary: "The machine's iPXE script for `chain http://…/boot/${mac:hexhyp}` (public: firmware cannot send a key)", tag: 'pxe', access: 'public',
      params: z.object({ mac: macField }),
      responses: { 200: { description: 'the iPXE script', contentType: 'text/plain', schema: z.string() }, 404: { description: 'no active session for this MAC', contentType: 'application/problem+json' } },
    },
    async ({ params, res }) => {
      const script = await store.activeBootScript(params.mac);
      if (script === undefined) {
        sendProblem(res, problem('NotFound', `no active PXE session for ${params.mac}`));
        return;
      }
      res.type('text/plain').send(script);
    },
  );
}

function machineBusy(machineId: string): ApiError {
  return new ApiError('MachineBusy', `machine ${machineId} is already in an active session`, { machine_id: machineId, busy_statuses: pxeBusyStatuses });
}
