import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { z } from 'zod';
import { stopSandboxesOf } from '../sandbox/revoke';
import { closeTerminalsOf } from '../terminal/revoke';
import { generateApiKey, hashApiKey, type Principal } from './auth';
import { ApiError } from './problems';
import type { ApiRoutes } from './routes';
import { createPlatformStore, type KeyRow, type UserRow } from './store';

interface UserRouteDeps {
  pool: Pool;
  temporal: Client;
}

const roles = ['user', 'admin'] as const;
const userName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, '1–64 of A–Z a–z 0–9 _ . @ -, starting with a letter or digit');
const userParams = z.object({ userId: z.uuid() });
const keyParams = userParams.extend({ keyId: z.uuid() });

const userView = z.object({ id: z.uuid(), name: z.string(), role: z.enum(roles), created_at: z.string(), disabled_at: z.string().nullable(), usable_keys: z.number().int() });
const keyStatuses = ['active', 'expired', 'revoked'] as const;
const keyView = z.object({ id: z.uuid(), label: z.string(), created_at: z.string(), expires_at: z.string().nullable(), revoked_at: z.string().nullable(), status: z.enum(keyStatuses) });
const closedView = z.object({ terminals: z.array(z.string()), sandboxes: z.array(z.string()) }).describe('the live sessions closed now: terminal session ids, sandbox chat ids');

function presentUser(row: UserRow) {
  return { id: row.id, name: row.name, role: row.role, created_at: row.created_at.toISOString(), disabled_at: row.disabled_at?.toISOString() ?? null, usable_keys: row.usable_keys };
}

/** A key as admins see it: never its hash. */
function presentKey(row: KeyRow, now = Date.now()) {
  const status = row.revoked_at ? 'revoked' : row.expires_at && row.expires_at.getTime() <= now ? 'expired' : 'active';
  return { id: row.id, label: row.label, created_at: row.created_at.toISOString(), expires_at: row.expires_at?.toISOString() ?? null, revoked_at: row.revoked_at?.toISOString() ?? null, status };
}

/**
 * Users and their API keys, for admins: list, create, issue and revoke keys, disable and enable.
 * A role is set when a user is created and no key route changes it. Revoking a user's access —
 * disabling them, or revoking their last usable key — also closes what they still have open
 * (terminals, sandboxes), so a leaked key stops working everywhere at once.
 */
export function registerUserRoutes(api: ApiRoutes, deps: UserRouteDeps): void {
  const store = createPlatformStore(deps.pool);

  async function existing(userId: string): Promise<UserRow> {
    const user = await store.user(userId);
    if (!user) throw new ApiError('UserNotFound', `no user ${userId}`);
    return user;
  }

  async function closeLiveSessions(userId: string) {
    const [terminals, sandboxes] = await Promise.all([closeTerminalsOf(deps, userId), stopSandboxesOf(deps, userId)]);
    return { terminals, sandboxes };
  }

  /** An admin who would lock themselves out is refused: another admin must do it. */
  function refuseSelfLockout(principal: Principal, userId: string, what: string): void {
    if (principal.userId === userId) throw new ApiError('SelfLockout', `${what} would lock you out; another admin can do it`);
  }

  api.route(
    {
      method: 'get', path: '/api/v1/admin/users', summary: 'Every user, with their role, whether disabled, and how many usable keys', tag: 'admin', access: 'admin',
      responses: { 200: { description: 'users by name', schema: z.object({ users: z.array(userView) }) } },
    },
    async ({ res }) => {
      res.json({ users: (await store.users()).map(presentUser) });
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/admin/users', summary: 'Create a user with a role (their keys come from POST …/keys)', tag: 'admin', access: 'admin',
      body: z.strictObject({ name: userName, role: z.enum(roles).default('user') }),
      responses: { 201: { description: 'the user', schema: userView }, 409: { description: 'UserNameTaken', contentType: 'application/problem+json' } },
    },
    async ({ body, res }) => {
      const user = await store.createUser(body.name, body.role);
      if (!user) throw new ApiError('UserNameTaken', `a user named ${body.name} exists`, { name: body.name });
      res.status(201).location(`/api/v1/admin/users/${user.id}`).json(presentUser(user));
    },
  );

  api.route(
    {
      method: 'get', path: '/api/v1/admin/users/:userId', summary: 'One user and all their keys (revoked and expired ones too; never a key itself)', tag: 'admin', access: 'admin',
      params: userParams,
      responses: { 200: { description: 'the user and their keys, newest first', schema: userView.extend({ keys: z.array(keyView) }) } },
    },
    async ({ params, res }) => {
      const user = await existing(params.userId);
      res.json({ ...presentUser(user), keys: (await store.keysOf(user.id)).map((key) => presentKey(key)) });
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/admin/users/:userId/keys', summary: 'Issue a key for the user (shown only in this answer); it never changes the user\'s role', tag: 'admin', access: 'admin',
      params: userParams,
      body: z.strictObject({
        label: z.string().max(100).default(''),
        expires_at: z.iso.datetime({ offset: true }).optional().describe('UTC ISO 8601; the key is refused from then on'),
      }).default({ label: '' }),
      responses: {
        201: { description: 'the key, shown only now', schema: keyView.extend({ key: z.string() }) },
        409: { description: 'UserDisabled: enable the user first', contentType: 'application/problem+json' },
      },
    },
    async ({ params, body, res }) => {
      const user = await existing(params.userId);
      if (user.disabled_at) throw new ApiError('UserDisabled', `${user.name} is disabled; enable the user before issuing keys`);
      const expiresAt = body.expires_at === undefined ? undefined : new Date(body.expires_at);
      if (expiresAt && expiresAt.getTime() <= Date.now()) {
        throw new ApiError('ValidationFailed', 'the request body is not valid', { errors: [{ field: 'body.expires_at', message: 'must be in the future' }] });
      }
      const key = generateApiKey();
      const row = await store.addKey(user.id, hashApiKey(key), body.label, expiresAt);
      res.status(201).json({ ...presentKey(row), key });
    },
  );

  api.route(
    {
      method: 'delete', path: '/api/v1/admin/users/:userId/keys/:keyId', summary: 'Revoke a key (idempotent); revoking the user\'s last usable key closes their live terminals and sandboxes', tag: 'admin', access: 'admin',
      params: keyParams,
      responses: { 200: { description: 'the key as it is now, and the sessions closed', schema: z.object({ key: keyView, closed: closedView }) } },
    },
    async ({ params, principal, res }) => {
      const user = await existing(params.userId);
      const target = (await store.keysOf(user.id)).find((key) => key.id === params.keyId);
      if (!target) throw new ApiError('ApiKeyNotFound', `user ${user.id} has no key ${params.keyId}`);
      if (user.usable_keys === 1 && presentKey(target).status === 'active') refuseSelfLockout(principal, user.id, 'revoking your last usable key');
      const key = (await store.revokeKey(user.id, params.keyId))!;
      const left = await existing(user.id);
      const closed = left.usable_keys === 0 ? await closeLiveSessions(user.id) : { terminals: [], sandboxes: [] };
      res.json({ key: presentKey(key), closed });
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/admin/users/:userId/disable', summary: 'Disable a user (idempotent): every key is refused, their live terminals and sandboxes are closed', tag: 'admin', access: 'admin',
      params: userParams,
      responses: { 200: { description: 'the user, and the sessions closed', schema: z.object({ user: userView, closed: closedView }) } },
    },
    async ({ params, principal, res }) => {
      await existing(params.userId);
      refuseSelfLockout(principal, params.userId, 'disabling yourself');
      // Refused first, then closed. A request let in just before may still open a session:
      // disabling again (idempotent) closes it.
      const user = (await store.setDisabled(params.userId, true))!;
      res.json({ user: presentUser(user), closed: await closeLiveSessions(user.id) });
    },
  );

  api.route(
    {
      method: 'post', path: '/api/v1/admin/users/:userId/enable', summary: 'Enable a disabled user again (their unrevoked, unexpired keys work again)', tag: 'admin', access: 'admin',
      params: userParams,
      responses: { 200: { description: 'the user', schema: userView } },
    },
    async ({ params, res }) => {
      await existing(params.userId);
      res.json(presentUser((await store.setDisabled(params.userId, false))!));
    },
  );
}
