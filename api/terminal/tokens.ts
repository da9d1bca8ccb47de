import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Session ids are 32 random bytes as 64 hex characters (seed 002). */
export function generateSessionId(): string {
  return randomBytes(32).toString('hex');
}

/** A connect token: 32 random bytes, shown once; only its SHA-256 hex is stored. */
export function generateSessionToken(): { token: string; tokenHash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, tokenHash: hashSessionToken(token) };
}

export function hashSessionToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Constant time: both sides are compared as SHA-256 digests of equal length (timingSafeEqual
 * throws on different lengths, and a length check would itself leak).
 */
export function verifySessionToken(token: string, storedHash: string): boolean {
  const given = createHash('sha256').update(token, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === given.length && timingSafeEqual(given, stored);
}
