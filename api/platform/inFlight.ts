import type { RequestHandler } from 'express';
import { principalOf } from './auth';
import { ApiError } from './problems';

/**
 * At most `limit` requests of one user going on at once through the routes that share this guard
 * (counted in this api process, from their headers on: a refused request's body is never read).
 * For requests that hold much memory or a staging table while they last, as file transfers.
 */
export function perUserInFlight(limit: number, refusal: (limit: number) => ApiError): RequestHandler {
  const going = new Map<string, number>();
  return (_req, res, next) => {
    const user = principalOf(res).userId;
    const count = going.get(user) ?? 0;
    if (count >= limit) {
      res.setHeader('Retry-After', '1');
      throw refusal(limit);
    }
    going.set(user, count + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (going.get(user) ?? 1) - 1;
      if (left > 0) going.set(user, left);
      else going.delete(user);
    };
    res.once('finish', release);
    res.once('close', release);
    next();
  };
}
