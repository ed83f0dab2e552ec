import type { Pool } from 'undici';
import { RawPool, type PooledConnection } from './raw-pool.js';
import { createUpstreamPool } from './upstream-pool.js';

/** Where a node's requests go, parsed once from its URL (not per request, as http-proxy does). */
export interface UpstreamTarget {
  /** `http://host:port` (or https): what a one-off connection (a fresh retry) is opened to. */
  readonly origin: string;
  /** `Host` for a client request that carried none (HTTP/1.0). */
  readonly hostHeader: string;
  /** The node's keep-alive connection pool (src/nodes/upstream-pool.ts). */
  readonly pool: Pool;
  /** The fast path's idle connections to the node (src/proxy/fast-path/); none for an https node. */
  readonly raw: RawPool<PooledConnection> | undefined;
}

/** The target of a node URL (`http://host:port/`, checked by the config schema). */
export function upstreamTargetOf(url: string): UpstreamTarget {
  const parsed = new URL(url);
  return {
    origin: parsed.origin,
    hostHeader: parsed.host,
    pool: createUpstreamPool(parsed.origin),
    // URL brackets an IPv6 literal; a socket connects to the bare address.
    raw:
      parsed.protocol === 'http:'
        ? new RawPool(parsed.hostname.replace(/^\[(.*)\]$/, '$1'), Number(parsed.port || 80))
        : undefined,
  };
}

/** Closes a target's pool: requests in flight finish, idle connections close at once. */
export function closeUpstreamTarget(target: UpstreamTarget): void {
  // Rejects only if already closed or destroyed: nothing left to close.
  target.pool.close().catch(() => undefined);
  target.raw?.close();
}
