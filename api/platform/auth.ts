import { createHash, randomBytes } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Pool } from 'pg';
import { ApiError } from './problems';
import { createPlatformStore } from './store';

export type Role = 'user' | 'admin';

export interface Principal {
  userId: string;
  name: string;
  role: Role;
}

/** Keys are 32 random bytes; only their SHA-256 is stored, so a database leak leaks no key. */
export function generateApiKey(): string {
  return `sf_${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * The key from `Authorization: Bearer <key>`, or — where `basic` is allowed — the password of
 * `Basic user:<key>`, the form Piston clients produce from a `http://user:KEY@host` server URL,
 * since they cannot set headers of their own. Basic is refused elsewhere: a browser replays
 * Basic credentials it remembers on cross-site requests, a bearer key it never sends by itself.
 */
export function credentialFrom(header: string | undefined, options: { basic: boolean }): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (!value) return undefined;
  if (/^bearer$/i.test(scheme ?? '')) return value;
  if (options.basic && isBasic(header)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 && colon < decoded.length - 1 ? decoded.slice(colon + 1) : undefined;
  }
  return undefined;
}

function isBasic(header: string): boolean {
  return /^\s*basic\s/i.test(header);
}

export function findPrincipal(pool: Pool, key: string): Promise<Principal | undefined> {
  return createPlatformStore(pool).principalByKeyHash(hashApiKey(key));
}

/** Resolves the request's key to its principal; `basic`: the route also takes the key as a Basic password. */
export function authenticate(pool: Pool, options: { basic: boolean }): RequestHandler {
  const store = createPlatformStore(pool);
  return async (req, res, next) => {
    const header = req.headers.authorization;
    const key = credentialFrom(header, options);
    const keyHash = key && hashApiKey(key);
    const principal = keyHash ? await store.principalByKeyHash(keyHash) : undefined;
    if (!principal) {
      // Never a Basic challenge: a browser would prompt, remember, and replay it cross-site.
      res.setHeader('WWW-Authenticate', 'Bearer realm="sessionflow"');
      if (!options.basic && header && isBasic(header)) throw new ApiError('Unauthenticated', 'HTTP Basic credentials are accepted only by the Piston routes (/api/v2); send Authorization: Bearer <api key>');
      throw new ApiError('Unauthenticated', key ? 'the API key is not valid, has expired or was revoked, or its user is disabled' : 'send Authorization: Bearer <api key>');
    }
    res.locals.principal = principal;
    res.locals.apiKeyHash = keyHash;
    next();
  };
}

export function requireRole(role: Role): RequestHandler {
  return (_req, res, next) => {
    const principal = principalOf(res);
    if (principal.role !== role && principal.role !== 'admin') {
      throw new ApiError('Forbidden', `this action needs the ${role} role`, { required_role: role });
    }
    next();
  };
}

/**
 * The one owner check. A principal sees its own resources, an admin everyone's; a resource it
 * may not see is answered as if it did not exist (404), so an id reveals nothing about others.
 * `ownerScope` is that rule for a store's query (undefined: no owner filter), `visibleTo` for
 * a row in hand.
 */
export function ownerScope(principal: Principal): string | undefined {
  return principal.role === 'admin' ? undefined : principal.userId;
}

export function visibleTo(principal: Principal, ownerId: string): boolean {
  const scope = ownerScope(principal);
  return scope === undefined || scope === ownerId;
}

/** The SHA-256 of the key that authenticated this request: what per-key limits count by. */
export function apiKeyHashOf(res: Response): string {
  const keyHash = res.locals.apiKeyHash as string | undefined;
  if (!keyHash) throw new ApiError('Unauthenticated', 'send Authorization: Bearer <api key>');
  return keyHash;
}

export function principalOf(res: Response): Principal {
  const principal = res.locals.principal as Principal | undefined;
  if (!principal) throw new ApiError('Unauthenticated', 'send Authorization: Bearer <api key>');
  return principal;
}

/**
 * Creates a user (or finds it by name) and a new key for it; returns the key, shown only once.
 * An existing user keeps its role (`role` undefined: whatever it is); asking for another fails
 * with RoleMismatch.
 */
export async function createUserKey(pool: Pool, name: string, role: Role | undefined, label = 'cli', expiresAt?: Date): Promise<{ key: string; userId: string }> {
  const key = generateApiKey();
  const userId = await createPlatformStore(pool).addUserKey(name, role, hashApiKey(key), label, expiresAt);
  return { key, userId };
}
