import type { Socket } from 'node:net';
import { buildConnector, Pool } from 'undici';

/** Set on a socket error when the socket had read bytes before it failed: it had been reused. */
const kReadBefore = Symbol('stickylb.readBefore');

/** How long a new connection to a node may take (undici's own default; a timeout maps to a 504). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The connection pool toward one node (undici `Pool`, one per node, created once): keep-alive,
 * no pipelining (a request waits for a free connection instead of queueing behind another's
 * answer), up to 512 connections as the `http.Agent` it replaces. An idle connection is closed
 * after 60 s, or 1 s before the node's `Keep-Alive: timeout=` hint, so the node rarely closes
 * one under us. undici also closes an idle connection on which the node sends bytes unasked
 * (response desync, RFC 9112 §11.1) and checks it before reuse.
 */
export function createUpstreamPool(origin: string): Pool {
  const connect = buildConnector({ timeout: CONNECT_TIMEOUT_MS });
  return new Pool(origin, {
    connections: 512,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
    keepAliveTimeoutThreshold: 1000,
    connect(options, callback) {
      connect(options, (error, socket) => {
        // Before undici's own 'error' listener: a reset on a socket that already carried an
        // answer is the keep-alive race (the node closed it as we reused it), not a failure.
        if (socket) socket.on('error', markReadBefore); // undefined (not null) when connecting failed
        (callback as (error: Error | null, socket: Socket | null | undefined) => void)(error, socket);
      });
    },
  });
}

function markReadBefore(this: Socket, error: Error): void {
  (error as Error & { [kReadBefore]?: boolean })[kReadBefore] = this.bytesRead > 0;
}

/**
 * Whether an upstream error happened on a connection that had read bytes before: a pooled,
 * reused one (or, rarely, one that got part of this answer's head before it failed).
 */
export function isReusedSocketError(error: unknown): boolean {
  const tagged = error as { [kReadBefore]?: boolean; socket?: { bytesRead?: number } } | undefined;
  if (tagged === undefined || tagged === null) return false;
  if (tagged[kReadBefore] !== undefined) return tagged[kReadBefore];
  // undici's SocketError ('other side closed') carries the socket's counters.
  return (tagged.socket?.bytesRead ?? 0) > 0;
}
