import type { Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { z } from 'zod';
import { createPxeStore, type PublicBootServerRow, type PxeStore } from '../../activities/pxe/store';
import { presentHostKey, setHostKey } from '../../activities/shared/hostKeyStore';
import { hostKeyInput, hostKeyView } from '../platform/hostKey';
import { isIpv4, normaliseMac } from '../../domain/pxe/mac';
import { pxeImageFormats, pxeImageStatuses } from '../../domain/pxe/pxe';
import type { pxeBootServerStatusWorkflow, pxeImageWorkflow } from '../../workflows/pxe/pxeImage';
import { ownerScope } from '../platform/auth';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import { pxeBootServerStatusKind, pxeImageKind } from '../../domain/pxe/kind';
import { sessionStartOptions } from '../../domain/shared/kind';

export interface PxeRouteDeps {
  temporal: Client;
  pool: Pool;
  taskQueue: string;
}

export const pxeBase = '/api/v1/pxe';

export const macField = z.string().transform((value, ctx) => {
  const mac = normaliseMac(value);
  if (!mac) ctx.addIssue({ code: 'custom', message: 'not a MAC address (e.g. 00:11:22:33:44:55, 00-11-22-33-44-55, 0011.2233.4455)' });
  return mac ?? value;
});
const ipField = z.string().refine(isIpv4, 'not an IPv4 address');
const absolutePath = z.string().regex(/^\/[^\0\n]*$/, 'an absolute path');
const idParams = z.object({ id: z.uuid() });

const bootServerBody = z.strictObject({
  name: z.string().min(1).max(64),
  ssh: z.strictObject({
    host: z.string().min(1), port: z.number().int().min(1).max(65535).default(22), user: z.string().min(1), key: z.string().min(1),
    // Optional: without it the worker's first connection pins the key the boot server presents.
    host_key: hostKeyInput.optional(),
  }),
  tftp_root: absolutePath,
  dhcp_hosts_file: absolutePath,
  dhcp_reload_command: z.string().min(1),
  dhcp_service_check: z.string().min(1).default('pgrep -x dhcpd'),
  tftp_service_check: z.string().min(1).default('pgrep -x in.tftpd'),
  target_driver: z.enum(['targetcli', 'tgt']),
  tgt_control_port: z.number().int().min(0).max(65535).nullable().default(null),
  portal_ip: ipField,
  iqn_prefix: z.string().regex(/^iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[\w.-]+)?$/, 'an iSCSI qualified name prefix such as iqn.2025-01.org.example'),
  image_dir: absolutePath,
});

const bootServerView = z.object({
  id: z.uuid(), name: z.string(), ssh: z.object({ host: z.string(), port: z.number(), user: z.string(), host_key: hostKeyView }),
  tftp_root: z.string(), dhcp_hosts_file: z.string(), dhcp_reload_command: z.string(), dhcp_service_check: z.string(), tftp_service_check: z.string(),
  target_driver: z.string(), tgt_control_port: z.number().nullable(), portal_ip: z.string(), iqn_prefix: z.string(), image_dir: z.string(), created_at: z.string(),
});

const machineBody = z.strictObject({
  name: z.string().min(1).max(128),
  mac: macField,
  ip: ipField,
  boot_mode: z.enum(['bios', 'uefi']).default('bios'),
  boot_server_id: z.uuid(),
});
const machineView = z.object({ id: z.uuid(), name: z.string(), mac: z.string(), ip: z.string(), boot_mode: z.string(), boot_server_id: z.uuid(), created_at: z.string() });

const imageBody = z.strictObject({
  name: z.string().min(1).max(128),
  filename: z.string().regex(/^[\w][\w.+-]*$/, 'a file name inside the boot server image directory'),
  format: z.enum(pxeImageFormats),
  boot_server_id: z.uuid(),
});
const imageView = z.object({
  id: z.uuid(), name: z.string(), filename: z.string(), format: z.enum(pxeImageFormats), size_bytes: z.number().nullable(), status: z.enum(pxeImageStatuses),
  progress: z.number(), error: z.string().nullable(), boot_server_id: z.uuid(), created_at: z.string(),
});

const adapterStatusView = z.object({
  dhcp: z.object({ service_running: z.boolean(), config_present: z.boolean(), config_valid: z.boolean(), host_entries: z.number(), detail: z.string() }),
  tftp: z.object({ service_running: z.boolean(), root_present: z.boolean(), script_count: z.number() }),
});

const presentBootServer = ({ ssh_host, ssh_port, ssh_user, created_at, host_key_fingerprint, host_key_algorithm, host_key_source, host_key_pinned_at, ...rest }: PublicBootServerRow) => ({
  ...rest,
  ssh: { host: ssh_host, port: ssh_port, user: ssh_user, host_key: presentHostKey({ host_key_fingerprint, host_key_algorithm, host_key_source, host_key_pinned_at }) },
  created_at: created_at.toISOString(),
});
const presentRow = <T extends { created_at: Date }>({ created_at, ...rest }: T) => ({ ...rest, created_at: created_at.toISOString() });

function uniqueViolation(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505' ? (err as { constraint?: string }).constraint ?? 'unique' : undefined;
}

async function requireBootServer(store: PxeStore, id: string): Promise<void> {
  if (!(await store.bootServerExists(id))) throw new ApiError('ValidationFailed', 'no such boot server', { errors: [{ field: 'body.boot_server_id', message: 'no such boot server' }] });
}

/** Boot servers (admin), machines and images of PXE sessions. */
export function registerPxeResourceRoutes(api: ApiRoutes, deps: PxeRouteDeps): void {
  const { temporal } = deps;
  const store = createPxeStore(deps.pool);

  api.route(
    { method: 'post', path: `${pxeBase}/boot-servers`, summary: 'Register a boot server reached over SSH', tag: 'pxe', access: 'admin', body: bootServerBody, responses: { 201: { description: 'registered', schema: bootServerView } } },
    async ({ body, res }) => {
      try {
        const { ssh, ...settings } = body;
        const row = await store.createBootServer({ ...settings, ssh_host: ssh.host, ssh_port: ssh.port, ssh_user: ssh.user, ssh_private_key: ssh.key, host_key: ssh.host_key ?? null });
        res.status(201).location(`${pxeBase}/boot-servers/${row.id}`).json(presentBootServer(row));
      } catch (err) {
        if (uniqueViolation(err)) throw new ApiError('ValidationFailed', 'a boot server with this name exists', { errors: [{ field: 'body.name', message: 'already taken' }] });
        throw err;
      }
    },
  );

  api.route(
    { method: 'get', path: `${pxeBase}/boot-servers`, summary: 'List boot servers', tag: 'pxe', access: 'admin', responses: { 200: { description: 'boot servers', schema: z.object({ items: z.array(bootServerView) }) } } },
    async ({ res }) => {
      res.json({ items: (await store.publicBootServers()).map(presentBootServer) });
    },
  );

  api.route(
    { method: 'get', path: `${pxeBase}/boot-servers/:id`, summary: 'A boot server', tag: 'pxe', access: 'admin', params: idParams, responses: { 200: { description: 'the boot server', schema: bootServerView } } },
    async ({ params, res }) => {
      const row = await store.publicBootServer(params.id);
      if (!row) throw new ApiError('NotFound', `no boot server ${params.id}`);
      res.json(presentBootServer(row));
    },
  );

  api.route(
    {
      method: 'put', path: `${pxeBase}/boot-servers/:id/host-key`, summary: 'Pin the SSH host key the boot server must present (after a legitimate key change, or for a server registered without one)',
      tag: 'pxe', access: 'admin', params: idParams, body: z.strictObject({ host_key: hostKeyInput }), responses: { 200: { description: 'the boot server', schema: bootServerView } },
    },
    async ({ params, body, res }) => {
      if (!(await setHostKey(deps.pool, 'pxe_boot_servers', params.id, body.host_key, 'admin'))) throw new ApiError('NotFound', `no boot server ${params.id}`);
      res.json(presentBootServer((await store.publicBootServer(params.id))!));
    },
  );

  api.route(
    {
      method: 'get', path: `${pxeBase}/boot-servers/:id/status`, summary: 'DHCP and TFTP adapter status of a boot server, probed over SSH', tag: 'pxe', access: 'admin', params: idParams,
      responses: { 200: { description: 'DHCP: service running, config valid, host entries; TFTP: service running, root present, scripts', schema: adapterStatusView } },
    },
    async ({ params, principal, res }) => {
      if (!(await store.bootServerExists(params.id))) throw new ApiError('NotFound', `no boot server ${params.id}`);
      const status = await temporal.workflow.execute<typeof pxeBootServerStatusWorkflow>(pxeBootServerStatusKind.workflowType, {
        ...sessionStartOptions(pxeBootServerStatusKind, {
          key: [params.id, randomUUID()], taskQueue: deps.taskQueue, status: 'RUNNING', ownerId: principal.userId,
          summary: `Probe the DHCP and TFTP adapters of boot server ${params.id}`,
        }),
        args: [{ bootServerId: params.id }],
        // A status probe that takes a minute has its answer: the boot server does not respond.
        workflowExecutionTimeout: '1m',
      });
      res.json(status);
    },
  );

  api.route(
    { method: 'post', path: `${pxeBase}/machines`, summary: 'Register a machine (MAC accepted in common notations, stored normalised)', tag: 'pxe', access: 'user', body: machineBody, responses: { 201: { description: 'registered', schema: machineView }, 409: { description: 'MAC or IP already taken', contentType: 'application/problem+json' } } },
    async ({ body, principal, res }) => {
      await requireBootServer(store, body.boot_server_id);
      try {
        const row = await store.createMachine(principal.userId, body);
        res.status(201).location(`${pxeBase}/machines/${row.id}`).json(presentRow(row));
      } catch (err) {
        const constraint = uniqueViolation(err);
        if (constraint) {
          const field = constraint.includes('mac') ? 'mac' : 'ip';
          throw new ApiError('MachineAddressTaken', `another machine already has ${field} ${body[field]}`, { field });
        }
        throw err;
      }
    },
  );

  registerOwnedReads(api, {
    path: `${pxeBase}/machines`, noun: 'machine', view: machineView, listSummary: 'List machines', oneSummary: 'A machine',
    list: (owner) => store.machines(owner), one: (id, owner) => store.machine(id, owner),
  });

  api.route(
    {
      method: 'post', path: `${pxeBase}/images`, summary: 'Register an image file of a boot server: checked there and converted to raw with qemu-img when needed', tag: 'pxe', access: 'user', body: imageBody,
      responses: { 202: { description: 'registered; becomes READY or ERROR', schema: imageView } },
    },
    async ({ body, principal, res }) => {
      await requireBootServer(store, body.boot_server_id);
      const row = await store.createImage(principal.userId, body);
      await temporal.workflow.start<typeof pxeImageWorkflow>(pxeImageKind.workflowType, {
        ...sessionStartOptions(pxeImageKind, {
          key: [row.id], taskQueue: deps.taskQueue, status: 'CONVERTING', ownerId: principal.userId,
          summary: `Prepare PXE image ${body.name} (${body.format} → raw)`,
        }),
        args: [{ imageId: row.id }],
      });
      res.status(202).location(`${pxeBase}/images/${row.id}`).json(presentRow(row));
    },
  );

  registerOwnedReads(api, {
    path: `${pxeBase}/images`, noun: 'image', view: imageView, listSummary: 'List images', oneSummary: 'An image and its preparation status',
    list: (owner) => store.images(owner), one: (id, owner) => store.image(id, owner),
  });
}

/** The list of a resource its owner (or an admin) reads, and one by id: anyone else's is a 404. */
function registerOwnedReads<Row extends { created_at: Date }>(api: ApiRoutes, resource: {
  path: string; noun: string; view: z.ZodType; listSummary: string; oneSummary: string;
  list: (owner: string | undefined) => Promise<Row[]>;
  one: (id: string, owner: string | undefined) => Promise<Row | undefined>;
}): void {
  api.route(
    { method: 'get', path: resource.path, summary: resource.listSummary, tag: 'pxe', access: 'user', responses: { 200: { description: `${resource.noun}s`, schema: z.object({ items: z.array(resource.view) }) } } },
    async ({ principal, res }) => {
      res.json({ items: (await resource.list(ownerScope(principal))).map(presentRow) });
    },
  );
  api.route(
    { method: 'get', path: `${resource.path}/:id`, summary: resource.oneSummary, tag: 'pxe', access: 'user', params: idParams, responses: { 200: { description: `the ${resource.noun}`, schema: resource.view } } },
    async ({ params, principal, res }) => {
      const row = await resource.one(params.id, ownerScope(principal));
      if (!row) throw new ApiError('NotFound', `no ${resource.noun} ${params.id}`);
      res.json(presentRow(row));
    },
  );
}
