/** Counters the admin API and metrics read. */
export interface ProxyCounters {
  requests: number;
  upstreamErrors: number;
  upstreamTimeouts: number;
  clientAborts: number;
  noHealthyNode: number;
  clientErrors: number;
  /** Requests replayed on another node after theirs refused or failed. */
  retries: number;
  /** Client connections closed unserved because `proxy.maxConnections` were open. */
  refusedConnections: number;
  /** Responses cut off because the node's connection ended before their body did (kill -9, bad framing). */
  truncatedResponses: number;
  /** Requests whose answer the fast path (src/proxy/fast-path/) relayed, out of `requests`. */
  fastPathRequests: number;
}

/** All proxy counters at zero. */
export function createProxyCounters(): ProxyCounters {
  return {
    requests: 0,
    upstreamErrors: 0,
    upstreamTimeouts: 0,
    clientAborts: 0,
    noHealthyNode: 0,
    clientErrors: 0,
    retries: 0,
    refusedConnections: 0,
    truncatedResponses: 0,
    fastPathRequests: 0,
  };
}
