import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';

/** Whether a listen host keeps the admin listener on this machine. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Constant-time token comparison. Both sides are hashed first so lengths match and the
 * comparison time says nothing about how much of the token was right.
 */
export function isTokenValid(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Whether a request sends its token as `Authorization: Bearer …` (then that token is the one checked). */
export function isBearer(authorization: string | undefined): boolean {
  return authorization?.startsWith('Bearer ') === true;
}

/** The token from `Authorization: Bearer …` or `?token=` (EventSource cannot set headers). */
export function tokenOf(authorization: string | undefined, queryToken: unknown): string | undefined {
  if (authorization !== undefined && isBearer(authorization)) return authorization.slice(7).trim();
  return typeof queryToken === 'string' ? queryToken : undefined;
}
