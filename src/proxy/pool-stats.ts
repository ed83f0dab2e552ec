import type { NodeCounters } from './ipc.js';
import { createProxyCounters, type ProxyCounters } from './proxy-counters.js';

/** Counters summed over every worker (last report of each). */
export interface PoolStats {
  counters: ProxyCounters & { rejectedIds: number };
  nodes: NodeCounters;
}

function createPoolStats(): PoolStats {
  return { counters: { ...createProxyCounters(), rejectedIds: 0 }, nodes: {} };
}

/** Adds `from` into `into`; `withInFlight: false` leaves the inFlight gauges out. */
function addStats(into: PoolStats, from: PoolStats, withInFlight: boolean): void {
  for (const key of Object.keys(into.counters) as Array<keyof PoolStats['counters']>) {
    into.counters[key] += from.counters[key] ?? 0;
  }
  for (const [id, [inFlight, requests]] of Object.entries(from.nodes)) {
    const sum = (into.nodes[id] ??= [0, 0]);
    if (withInFlight) sum[0] += inFlight;
    sum[1] += requests;
  }
}

/**
 * The workers' last counter reports, summed. A worker that dies leaves its counts in a retired
 * base rather than taking them with it: these are Prometheus counters, and a total that drops
 * reads as a reset, which `rate()` turns into a false spike. Its inFlight (a gauge) goes.
 */
export class PoolStatsTable<Key> {
  readonly #live = new Map<Key, PoolStats>();
  readonly #retired = createPoolStats();

  /** The latest report of a live worker, replacing its previous one. */
  set(key: Key, stats: PoolStats): void {
    this.#live.set(key, stats);
  }

  /** A worker is gone: its last report joins the retired base. */
  retire(key: Key): void {
    const last = this.#live.get(key);
    if (last === undefined) return;
    this.#live.delete(key);
    addStats(this.#retired, last, false);
  }

  /** Live workers' reports plus the retired base. */
  sum(): PoolStats {
    const total = createPoolStats();
    addStats(total, this.#retired, false);
    for (const stats of this.#live.values()) addStats(total, stats, true);
    return total;
  }
}
