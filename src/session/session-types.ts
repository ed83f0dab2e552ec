/** How recently a session was used: `active` sessions are never evicted, `expired` ones are gone. */
export type SessionState = 'active' | 'idle' | 'expired';

/**
 * One session as the store hands it out. Treat every field as read-only: change data through
 * the store (`update`, `updateAsync`, `replace`, `put`) so the version moves with it, and the
 * access time through `get` / `touch` (writing `lastAccessAt` throws: it is an accessor).
 */
export interface SessionEntry<V> {
  readonly id: string;
  value: V;
  version: number;
  lastAccessAt: number;
}

/** Options of a SessionStore; durations in milliseconds. */
export interface SessionStoreOptions {
  /** A session not accessed for this long is expired. Required. */
  idleTimeoutMs: number;
  /** Upper bound on stored sessions (default Infinity). */
  maxSessions?: number;
  /** Accessed within this window = `active`, never evicted (default 60 000). */
  activeWindowMs?: number;
  /** Period of the background sweep started by `start()` (default 1000). */
  sweepIntervalMs?: number;
  /** Time box of one sweep slice; the sweep yields to the event loop between slices (default 2). */
  sweepSliceMs?: number;
  /**
   * Wall clock in ms, read once per operation. Default: `Date.now()` read once per event-loop
   * turn and cached for the rest of it (turn-clock.ts), so expiry is exact to one loop turn.
   */
  now?: () => number;
}

/** A snapshot of a store's counters; rates are explained on `SessionStore.metrics`. */
export interface StoreMetrics {
  total: number;
  active: number;
  idle: number;
  expiredPerSec: number;
  evictedPerSec: number;
  expiredTotal: number;
  evictedTotal: number;
  sweepRuns: number;
  longestSweepSliceMs: number;
  /**
   * The longest sweep slice in process CPU time: without waits for a core, but with whatever
   * helper threads (GC, compiler) ran meanwhile, so an upper bound of the slice's own cost.
   */
  longestSweepSliceCpuMs: number;
  lastSweepMs: number;
  bytesPerSession: number;
}

/** Events of a SessionStore; each carries the entry concerned. */
export type StoreEvents<V> = {
  created: [SessionEntry<V>];
  updated: [SessionEntry<V>];
  expired: [SessionEntry<V>];
  evicted: [SessionEntry<V>];
  deleted: [SessionEntry<V>];
  touched: [SessionEntry<V>];
};
