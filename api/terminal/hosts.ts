import { randomUUID } from 'node:crypto';
import type { PublicHostRow, TerminalStore } from '../../activities/terminal/store';
import { z } from 'zod';
import { pinOf, presentHostKey } from '../../activities/shared/hostKeyStore';
import { readHostKey, type HostKeyPin, type HostKeyTrust } from '../../activities/shared/hostKeys';
import { hostKeyInput, hostKeyView } from '../platform/hostKey';
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
// host_key: the key the host must present. Without it the api reads the key the host presents
// now, without logging in, and pins that (trust on first use; the answer shows the fingerprint).
const createHostBody = z.strictObject({ ...hostFields, port: hostFields.port.default(22), auth: hostAuth, host_key: hostKeyInput.optional() });
const updateHostBody = z.strictObject({
  name: hostFields.name.optional(), address: hostFields.address.optional(), port: hostFields.port.optional(), username: hostFields.username.optional(), auth: hostAuth.optional(),
  host_key: hostKeyInput.optional(),
});
const hostView = z.object({
  id: z.uuid(), name: z.string(), address: z.string(), port: z.number(), username: z.string(),
  auth_type: z.enum(['private_key', 'password']), host_key: hostKeyView, created_at: z.string(), updated_at: z.string(),
});
const hostId = z.object({ id: z.uuid() });

/** What the WebSocket bridge needs to log in; exists only in memory, never in a response or log. */
export interface ConnectableHost {
  id: string; name: string; address: string; port: number; username: string; auth: HostAuth;
  /** Checked before the credential is sent. */
  hostKey: HostKeyTrust;
}

export interface HostKeySettings {
  /** Pin what an unpinned host presents (its registration, or a key host's next connection). */
  trustOnFirstUse: boolean;
  probeTimeoutMs: number;
}

function present(row: PublicHostRow) {
  return {
    id: row.id, name: row.name, address: row.address, port: row.port, username: row.username, auth_type: row.auth_type,
    host_key: presentHostKey(row), created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString(),
  };
}

export class TerminalHosts {
  constructor(
    private readonly store: TerminalStore,
    private readonly sealer: CredentialSealer,
    private readonly hostKeys: HostKeySettings,
  ) {}

  find(id: string): Promise<PublicHostRow | undefined> {
    return this.store.host(id);
  }

  async connectable(id: string): Promise<ConnectableHost | undefined> {
    const row = await this.store.hostWithCredential(id);
    if (!row) return undefined;
    const auth = hostAuth.parse(JSON.parse(this.sealer.open(row.credential_sealed, row.id)));
    return { id: row.id, name: row.name, address: row.address, port: row.port, username: row.username, auth, hostKey: this.trust(row) };
  }

  /**
   * An unpinned host (a row from before host keys were pinned) is pinned by its next connection
   * only when it logs in with a key: a key login reveals nothing a host could replay, a password
   * does, so a password host waits for an admin to pin its key.
   */
  private trust(row: PublicHostRow): HostKeyTrust {
    const pinned = pinOf(row);
    const firstUse = !pinned && this.hostKeys.trustOnFirstUse && row.auth_type === 'private_key';
    return { pinned, pinOnFirstUse: firstUse ? (presented) => this.store.pinHostKeyOnFirstUse(row.id, presented) : undefined };
  }

  /** Refuses, before a session starts, a host its bridge could never log in to. */
  assertConnectable(row: PublicHostRow): void {
    const trust = this.trust(row);
    if (trust.pinned || trust.pinOnFirstUse) return;
    throw new ApiError('HostKeyUnverified', `host ${row.name} has no pinned SSH host key, and its ${row.auth_type === 'password' ? 'password' : 'credential'} is not sent to an unverified host; an admin pins it with PATCH /api/v1/admin/hosts/${row.id} {"host_key": …}`, { host_id: row.id });
  }

  async create(body: z.infer<typeof createHostBody>) {
    const id = randomUUID();
    const hostKey = body.host_key ? { pin: body.host_key, source: 'admin' as const } : { pin: await this.probe(body.address, body.port), source: 'first_use' as const };
    const sealed = this.sealer.seal(JSON.stringify(body.auth), id);
    const row = await this.store
      .createHost({ id, name: body.name, address: body.address, port: body.port, username: body.username, authType: body.auth.type, sealed, hostKey })
      .catch(nameTaken(body.name));
    return present(row);
  }

  /** A new address or port is another host: its key is read and pinned again unless one is given. */
  async update(id: string, body: z.infer<typeof updateHostBody>) {
    const current = await this.store.host(id);
    if (!current) throw new ApiError('HostNotFound', `no host ${id}`);
    const moved = (body.address ?? current.address) !== current.address || (body.port ?? current.port) !== current.port;
    const hostKey = body.host_key ? { pin: body.host_key, source: 'admin' as const }
      : moved ? { pin: await this.probe(body.address ?? current.address, body.port ?? current.port), source: 'first_use' as const } : undefined;
    const sealed = body.auth ? this.sealer.seal(JSON.stringify(body.auth), id) : undefined;
    const row = await this.store
      .updateHost(id, { name: body.name, address: body.address, port: body.port, username: body.username, authType: body.auth?.type, sealed, hostKey })
      .catch(nameTaken(body.name ?? ''));
    if (!row) throw new ApiError('HostNotFound', `no host ${id}`);
    return present(row);
  }

  /** Trust on first use at registration: the key the host presents now, read without logging in. */
  private async probe(address: string, port: number): Promise<HostKeyPin> {
    if (!this.hostKeys.trustOnFirstUse) {
      throw new ApiError('ValidationFailed', 'host_key is required: SSH_TRUST_ON_FIRST_USE is false', { errors: [{ field: 'body.host_key', message: 'required when SSH_TRUST_ON_FIRST_USE is false' }] });
    }
    try {
      return await readHostKey(address, port, this.hostKeys.probeTimeoutMs);
    } catch (err) {
      throw new ApiError('HostUnreachable', `could not read the SSH host key of ${address}:${port} (${(err as Error).message}); give host_key to register a host that does not answer yet`, { address, port });
    }
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
