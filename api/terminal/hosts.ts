import { randomUUID } from 'node:crypto';
import type { PublicHostRow, TerminalStore } from '../../activities/terminal/store';
import { z } from 'zod';
import { ApiError } from '../platform/problems';
import type { ApiRoutes } from '../platform/routes';
import type { CredentialSealer } from './credentials';

/** How to log in: the secret half is sealed at rest and never leaves the api again. */
const hostAuth = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('private_key'), private_key: z.string().min(1).max(16_384), passphrase: z.string().max(1024).optional() }),
  z.strictObject({ type: z.literal('password'), password: z.string().min(1).max(1024) }),
]);
type HostAuth = z.infer<typeof hostAuth>;

const hostFields = {
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, _ . - (at most 63)'),
  address: z.string().min(1).max(253).regex(/^[A-Za-z0-9.:_-]+$/, 'a host name or IP address'),
  port: z.number().int().min(1).max(65535),
  username: z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, 'a POSIX user name'),
};
const createHostBody = z.strictObject({ ...hostFields, port: hostFields.port.default(22), auth: hostAuth });
const updateHostBody = z.strictObject({
  name: hostFields.name.optional(), address: hostFields.address.optional(), port: hostFields.port.optional(), username: hostFields.username.optional(), auth: hostAuth.optional(),
});
const hostView = z.object({
  id: z.uuid(), name: z.string(), address: z.string(), port: z.number(), username: z.string(),
  auth_type: z.enum(['private_key', 'password']), created_at: z.string(), updated_at: z.string(),
});
const hostId = z.object({ id: z.uuid() });

/** What the WebSocket bridge needs to log in; exists only in memory, never in a response or log. */
export interface ConnectableHost {
  id: string; name: string; address: string; port: number; username: string; auth: HostAuth;
}

function present(row: PublicHostRow) {
  return {
    id: row.id, name: row.name, address: row.address, port: row.port, username: row.username, auth_type: row.auth_type,
    created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString(),
  };
}

export class TerminalHosts {
  constructor(private readonly store: TerminalStore, private readonly sealer: CredentialSealer) {}

  find(id: string): Promise<PublicHostRow | undefined> {
    return this.store.host(id);
  }

  async connectable(id: string): Promise<ConnectableHost | undefined> {
    const row = await this.store.hostWithCredential(id);
    if (!row) return undefined;
    const auth = hostAuth.parse(JSON.parse(this.sealer.open(row.credential_sealed, row.id)));
    return { id: row.id, name: row.name, address: row.address, port: row.port, username: row.username, auth };
  }

  async create(body: z.infer<typeof createHostBody>) {
    const id = randomUUID();
    const sealed = this.sealer.seal(JSON.stringify(body.auth), id);
    const row = await this.store
      .createHost({ id, name: body.name, address: body.address, port: body.port, username: body.username, authType: body.auth.type, sealed })
      .catch(nameTaken(body.name));
    return present(row);
  }

  async update(id: string, body: z.infer<typeof updateHostBody>) {
    const sealed = body.auth ? this.sealer.seal(JSON.stringify(body.auth), id) : undefined;
    const row = await this.store
      .updateHost(id, { name: body.name, address: body.address, port: body.port, username: body.username, authType: body.auth?.type, sealed })
      .catch(nameTaken(body.name ?? ''));
    if (!row) throw new ApiError('HostNotFound', `no host ${id}`);
    return present(row);
  }

  async remove(id: string): Promise<void> {
    const active = await this.store.activeSessionsOnHost(id);
    if (active > 0) throw new ApiError('HostInUse', `host ${id} has ${active} active terminal sessions; close them first`, { active_sessions: active });
    if (!(await this.store.deleteHost(id))) throw new ApiError('HostNotFound', `no host ${id}`);
  }

  async list() {
    return (await this.store.hosts()).map(present);
  }
}

function nameTaken(name: string) {
  return (err: unknown): never => {
    if ((err as { code?: string }).code === '23505') throw new ApiError('HostNameTaken', `a host named ${name} exists`);
    throw err;
  };
}

/** Admins register hosts; every user can list them (without credentials) to pick one. */
export function registerTerminalHostRoutes(api: ApiRoutes, hosts: TerminalHosts): void {
  const one = { 200: { description: 'the host (never its credential)', schema: hostView } };
  api.route(
    { method: 'post', path: '/api/v1/admin/hosts', summary: 'Register an SSH host for terminals; the credential is sealed at rest', tag: 'terminals', access: 'admin', body: createHostBody, responses: { 201: one[200] } },
    async ({ body, res }) => {
      const host = await hosts.create(body);
      res.status(201).location(`/api/v1/admin/hosts/${host.id}`).json(host);
    },
  );
  api.route(
    { method: 'get', path: '/api/v1/admin/hosts', summary: 'SSH hosts', tag: 'terminals', access: 'admin', responses: { 200: { description: 'hosts', schema: z.object({ hosts: z.array(hostView) }) } } },
    async ({ res }) => {
      res.json({ hosts: await hosts.list() });
    },
  );
  api.route(
    { method: 'get', path: '/api/v1/admin/hosts/:id', summary: 'One SSH host', tag: 'terminals', access: 'admin', params: hostId, responses: one },
    async ({ params, res }) => {
      const host = await hosts.find(params.id);
      if (!host) throw new ApiError('HostNotFound', `no host ${params.id}`);
      res.json(present(host));
    },
  );
  api.route(
    { method: 'patch', path: '/api/v1/admin/hosts/:id', summary: 'Change an SSH host (a new credential replaces the sealed one)', tag: 'terminals', access: 'admin', params: hostId, body: updateHostBody, responses: one },
    async ({ params, body, res }) => {
      res.json(await hosts.update(params.id, body));
    },
  );
  api.route(
    { method: 'delete', path: '/api/v1/admin/hosts/:id', summary: 'Remove an SSH host without active sessions', tag: 'terminals', access: 'admin', params: hostId, responses: { 204: { description: 'removed' } } },
    async ({ params, res }) => {
      await hosts.remove(params.id);
      res.status(204).end();
    },
  );
  api.route(
    { method: 'get', path: '/api/v1/hosts', summary: 'SSH hosts a terminal can be opened on', tag: 'terminals', access: 'user', responses: { 200: { description: 'hosts', schema: z.object({ hosts: z.array(hostView) }) } } },
    async ({ res }) => {
      res.json({ hosts: await hosts.list() });
    },
  );
}
