/** A kept-alive connection the raw pool can hold while it is idle. */
export interface PooledConnection {
  /** `performance.now()` when it was put back. */
  idleSince: number;
  /** How long it may stay idle: under the node's own keep-alive timeout when it said one. */
  maxIdleMs: number;
  destroy(): void;
}

/**
 * The idle keep-alive connections of the fast path toward one node (its busy ones belong to
 * the requests using them). Last in, first out: the warmest connection is reused, the
 * coldest idle out. A connection idle past its limit is closed when met, so a node closing
 * it on its own keep-alive timeout rarely races a request onto it.
 */
export class RawPool<T extends PooledConnection> {
  readonly host: string;
  readonly port: number;
  /** Connections open to the node, idle or busy (kept by the connections themselves). */
  openCount = 0;
  #idle: T[] = [];
  #isClosed = false;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
    livePools.add(this);
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  /** The most recently used idle connection still within its idle limit, if any. */
  take(now: number): T | undefined {
    for (let connection = this.#idle.pop(); connection !== undefined; connection = this.#idle.pop()) {
      if (now - connection.idleSince < connection.maxIdleMs) return connection;
      connection.destroy();
    }
    return undefined;
  }

  /** Keeps an idle connection for the next request; false once the pool is closed (destroy it). */
  put(connection: T, now: number): boolean {
    if (this.#isClosed) return false;
    connection.idleSince = now;
    this.#idle.push(connection);
    return true;
  }

  /** Forgets an idle connection the node closed. */
  remove(connection: T): void {
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
  }

  /** Closes the idle connections past their limit (the coldest are first in the list). */
  sweep(now: number): void {
    while (this.#idle.length > 0) {
      const coldest = this.#idle[0] as T;
      if (now - coldest.idleSince < coldest.maxIdleMs) return;
      this.#idle.shift();
      coldest.destroy();
    }
  }

  /** Closes every idle connection; busy ones are destroyed, not returned, when their answer ends. */
  close(): void {
    livePools.delete(this);
    this.#isClosed = true;
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }
}

/** The pools not yet closed, so the fast path's sweep can close what idled out in each. */
const livePools = new Set<RawPool<PooledConnection>>();

/** Closes, in every pool, the idle connections past their limit (the fast path's timeout sweep). */
export function sweepIdleConnections(now: number): void {
  for (const pool of livePools) pool.sweep(now);
}
