import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHead } from './header-hygiene.js';
import type { RouteDecision } from './router.js';
import type { UpstreamExchange } from './upstream-forwarder.js';

// The full path's per-request state, shared by ProxyServer (routing, bookkeeping) and Recovery
// (failures): symbol keys on Node's own request and response objects, no object per request.
export const kRoute = Symbol('stickylb.route');
export const kProxyReq = Symbol('stickylb.proxyReq');
export const kAttempts = Symbol('stickylb.attempts');
export const kBody = Symbol('stickylb.body');
export const kBodyBytes = Symbol('stickylb.bodyBytes');
export const kStartedAt = Symbol('stickylb.startedAt');
export const kHead = Symbol('stickylb.head');
export const kFreshRetry = Symbol('stickylb.freshRetry');
export const kReused = Symbol('stickylb.reused');

/** Per-request state rides on the response object itself: no closure per request. */
export type ProxiedResponse = ServerResponse & {
  [kRoute]?: RouteDecision;
  [kProxyReq]?: UpstreamExchange;
  [kAttempts]?: number;
  /** `performance.now()` when the request arrived (admin latency). */
  [kStartedAt]?: number;
  /** Already replayed once over a new connection after a stale kept-alive one. */
  [kFreshRetry]?: boolean;
  /** The fast path's attempt failed on a reused connection (the keep-alive race). */
  [kReused]?: boolean;
};
/** A request whose body is kept (up to maxBodyBytes) so a refused attempt can be replayed; null: too big. */
export type ProxiedRequest = IncomingMessage & {
  [kRoute]?: RouteDecision;
  /** The forwarded headers (plain requests only; upgrades use `headers`). */
  [kHead]?: RequestHead;
  [kBody]?: Buffer[] | null;
  [kBodyBytes]?: number;
};
