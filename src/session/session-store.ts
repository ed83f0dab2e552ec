import { SessionLimitError, SessionNotFoundError, VersionConflictError } from '../errors.js';
import type {
  SessionEntry,
  SessionState,
  SessionStoreOptions,
  StoreEvents,
  StoreMetrics,
} from './session-types.js';
import { AccessList } from './access-list.js';
import { QuietEmitter } from './quiet-emitter.js';
import { StoreEntry } from './store-entry.js';
import { BytesEstimate, StoreCounters } from './store-metrics.js';
import { resolveStoreOptions } from './store-options.js';
import { Sweeper, type SweepTarget } from './sweeper.js';
import { turnClock } from './turn-clock.js';
import { WriteQueue } from './write-queue.js';

export type { SessionEntry, SessionState, SessionStoreOptions, StoreEvents, StoreMetrics };

/**
 * Sessions in memory with idle expiry, a `maxSessions` bound, per-session versions and
 * atomic updates. Knows nothing of HTTP: nodes keep compartment data in it, the proxy uses
 * it as its affinity table.
 *
 * Entries sit in one Map and in a list ordered by last access (least recent first), linked
 * through the entries themselves: a touch is O(1) and the sweep pops expired entries from
 * the head, so its cost grows with the number of expired sessions, not with the total.
 * Reads expire lazily too, so `size` may count sessions that expired since the last sweep
 * (at most `sweepIntervalMs` old once `start()` runs).
 *
 * Events are emitted only when someone listens, so an unobserved store pays nothing for them.
 */
export class SessionStore<V> extends QuietEmitter<StoreEvents<V>> {
  private readonly byId = new Map<string, StoreEntry<V>>();
  private readonly list: AccessList<V>;
  private readonly idleTimeoutMs: number;
  private readonly maxSessions: number;
  private readonly activeWindowMs: number;
  /** The injected clock, or undefined for the shared once-per-turn clock (see `time`). */
  private readonly clock: (() => number) | undefined;
  private readonly sweeper: Sweeper;
  private readonly asyncWrites = new WriteQueue();

  private readonly counters: StoreCounters;
  private readonly bytesEstimate = new BytesEstimate();

  constructor(options: SessionStoreOptions) {
    super();
    const resolved = resolveStoreOptions(options);
    this.idleTimeoutMs = resolved.idleTimeoutMs;
    this.maxSessions = resolved.maxSessions;
    this.activeWindowMs = resolved.activeWindowMs;
    this.clock = resolved.now;
    const target: SweepTarget = {
      now: () => this.time(),
      beginSweep: (now) => this.counters.roll(now),
      expireOldest: (now) => this.expireOldest(now),
      finishSlice: (now, started, sliceMs) => this.list.advanceActive(now, started, sliceMs),
    };
    this.sweeper = new Sweeper(target, resolved.sweepIntervalMs, resolved.sweepSliceMs);
    const now = this.time();
    this.list = new AccessList<V>(this.activeWindowMs, now);
    this.counters = new StoreCounters(now);
  }

  /** Stored sessions, including any that expired since the last sweep and were not read since. */
  get size(): number {
    return this.byId.size;
  }

  /**
   * Creates a session at version 1. On an id that is already live nothing is replaced: the
   * existing entry is touched and returned (an id collision is the caller's bug, not data).
   * When `maxSessions` is reached the least recently used session is expired if it is, else
   * evicted if idle; if it is active, throws SessionLimitError.
   */
  create(id: string, value: V): SessionEntry<V> {
    const now = this.time();
    const existing = this.byId.get(id);
    if (existing !== undefined) {
      if (now - existing.lastAccessAt < this.idleTimeoutMs) {
        this.list.touch(existing, now);
        if (this.hears('touched')) this.emit('touched', existing);
        return existing;
      }
      this.expire(existing);
    }
    return this.add(id, value, 1, now, now);
  }

  /** The live session, touched (its idle time restarts); an expired one is removed and emits `expired`. */
  get(id: string): SessionEntry<V> | undefined {
    const entry = this.byId.get(id);
    if (entry === undefined) return undefined;
    const now = this.time();
    if (now - entry.lastAccessAt >= this.idleTimeoutMs) {
      this.expire(entry);
      return undefined;
    }
    this.list.touch(entry, now);
    if (this.hears('touched')) this.emit('touched', entry);
    return entry;
  }

  /** The live session without touching it; an expired one is removed as in `get`. */
  peek(id: string): SessionEntry<V> | undefined {
    return this.liveEntry(id, this.time());
  }

  /** Restarts the session's idle time; false when it is not live. */
  touch(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** Whether the session is live (no touch). */
  has(id: string): boolean {
    return this.liveEntry(id, this.time()) !== undefined;
  }

  /** Removes a live session and emits `deleted`; false when there was none (an expired one emits `expired`). */
  delete(id: string): boolean {
    const entry = this.liveEntry(id, this.time());
    if (entry === undefined) return false;
    this.remove(entry);
    if (this.hears('deleted')) this.emit('deleted', entry);
    return true;
  }

  /**
   * Applies `fn` to the value (mutate it, or return a replacement) and bumps the version,
   * synchronously. If `fn` throws, the version stays and the error propagates; changes `fn`
   * already made in place stay too (the value is not copied: pass a copy to roll back).
   */
  update(id: string, fn: (value: V) => V | void): SessionEntry<V> {
    const now = this.time();
    const entry = this.liveEntry(id, now);
    if (entry === undefined) throw new SessionNotFoundError(id);
    const result = fn(entry.value);
    if (!entry.isLinked) throw new SessionNotFoundError(id);
    if (result !== undefined) entry.value = result as V;
    entry.version++;
    this.list.touch(entry, now);
    if (this.hears('updated')) this.emit('updated', entry);
    return entry;
  }

  /**
   * `update` for asynchronous `fn`, serialised per session: a call starts only when the
   * previous one for the same id has settled, so interleaved requests never lose an update.
   * Rejects with SessionNotFoundError if the session is gone when its turn comes or when `fn`
   * settles, and with VersionConflictError if a synchronous write (`update`, `replace`, `put`)
   * changed it while `fn` ran (its result would overwrite that write).
   */
  updateAsync(id: string, fn: (value: V) => Promise<V | void>): Promise<SessionEntry<V>> {
    return this.asyncWrites.run(id, () => this.applyAsync(id, fn));
  }

  /** Compare-and-set: stores `value` only if the version is still `expectedVersion`, else throws VersionConflictError. */
  replace(id: string, value: V, expectedVersion: number): SessionEntry<V> {
    const now = this.time();
    const entry = this.liveEntry(id, now);
    if (entry === undefined) throw new SessionNotFoundError(id);
    if (expectedVersion !== entry.version) throw new VersionConflictError(id, expectedVersion, entry.version);
    entry.value = value;
    entry.version++;
    this.list.touch(entry, now);
    if (this.hears('updated')) this.emit('updated', entry);
    return entry;
  }

  /**
   * Installs a replicated copy (replica, failover restore) only if `version` is newer than the
   * stored one, else throws VersionConflictError: a stale copy is refused, never applied.
   * `lastAccessAt` (default now; a future one counts as now) keeps idle expiry in step with
   * the primary; an existing session keeps the later of the two times. Emits `created` or
   * `updated`; obeys `maxSessions` like `create`.
   */
  put(id: string, value: V, version: number, lastAccessAt?: number): SessionEntry<V> {
    const now = this.time();
    let requested = lastAccessAt === undefined ? now : lastAccessAt;
    // Ahead of the turn clock is not necessarily the future: a copy stamped by another process
    // this millisecond is ahead of a reading taken earlier in the turn. Only past the wall
    // clock does it count as now (a read on this rare path keeps a replica's time exact).
    if (requested > now) requested = this.clock === undefined ? Math.min(requested, Date.now()) : now;
    const existing = this.liveEntry(id, now);
    if (existing !== undefined) {
      if (version <= existing.version) throw new VersionConflictError(id, version, existing.version);
      existing.value = value;
      existing.version = version;
      const at = Math.max(requested, existing.lastAccessAt);
      this.list.remove(existing);
      this.list.insert(existing, at);
      if (this.hears('updated')) this.emit('updated', existing);
      return existing;
    }
    return this.add(id, value, version, requested, now);
  }

  /** The state of an entry now, by its last access time alone. */
  stateOf(entry: SessionEntry<V>): SessionState {
    const idleMs = this.time() - entry.lastAccessAt;
    if (idleMs >= this.idleTimeoutMs) return 'expired';
    return idleMs < this.activeWindowMs ? 'active' : 'idle';
  }

  /**
   * Live entries, least recently used first, without touching them. Deleting, touching or
   * updating the entry just yielded is safe (a touched entry is not visited again); removing
   * other entries mid-iteration may end it early.
   */
  *entries(): IterableIterator<SessionEntry<V>> {
    yield* this.list.accessedAfter(this.time() - this.idleTimeoutMs, this.byId.size);
  }

  /**
   * Ids of the live sessions `select` accepts, least recently used first (most recently used
   * first with `newestFirst`), in one synchronous pass without touching them; `select` must
   * not change the store. Faster than filtering `entries()` for a large store.
   */
  idsWhere(select: (entry: SessionEntry<V>) => boolean, newestFirst = false): string[] {
    return this.list.idsWhere(this.time() - this.idleTimeoutMs, select, newestFirst);
  }

  /**
   * How many stored sessions `select` accepts, expired ones not yet swept included: each of
   * those still leaves through an `expired` event, so a count kept from events starts here.
   */
  countWhere(select: (entry: SessionEntry<V>) => boolean): number {
    return this.list.idsWhere(-Infinity, select, false).length;
  }

  /**
   * Counters now. `idle` includes sessions expired but not yet swept. `expiredPerSec` and
   * `evictedPerSec` cover the last closed window of ≥ 1 s (windows close on sweep ticks and
   * on this call). `bytesPerSession` is an estimate from ≤ 64 recent sessions, refreshed at
   * most once a second; bench/store.ts measures the real heap cost.
   */
  metrics(): StoreMetrics {
    const now = this.time();
    this.counters.roll(now);
    this.list.advanceActive(now);
    const total = this.byId.size;
    const active = this.list.activeCount;
    return {
      total,
      active,
      idle: total - active,
      expiredPerSec: this.counters.expiredPerSec,
      evictedPerSec: this.counters.evictedPerSec,
      expiredTotal: this.counters.expiredTotal,
      evictedTotal: this.counters.evictedTotal,
      sweepRuns: this.sweeper.runs,
      longestSweepSliceMs: this.sweeper.longestSliceMs,
      longestSweepSliceCpuMs: this.sweeper.longestSliceCpuMs,
      lastSweepMs: this.sweeper.lastSweepMs,
      bytesPerSession: this.bytesEstimate.read(now, () => this.list.newestFirst()),
    };
  }

  /**
   * One full sweep now, in slices of about `sweepSliceMs` with a `setImmediate` yield between
   * them; resolves to the number of sessions it expired. A sweep already running is joined.
   * `lastSweepMs` records the busy time of the sweep (its slices, not the yields).
   */
  sweep(): Promise<number> {
    return this.sweeper.sweep();
  }

  /** Starts the periodic sweep: one unref'd interval per store, never a timer per session. */
  start(): void {
    this.sweeper.start();
  }

  /** Stops the periodic sweep (a sweep in progress finishes). */
  stop(): void {
    this.sweeper.stop();
  }

  private async applyAsync(id: string, fn: (value: V) => Promise<V | void>): Promise<SessionEntry<V>> {
    const now = this.time();
    const entry = this.liveEntry(id, now);
    if (entry === undefined) throw new SessionNotFoundError(id);
    this.list.touch(entry, now);
    const version = entry.version;
    const result = await fn(entry.value);
    if (!entry.isLinked) throw new SessionNotFoundError(id);
    if (entry.version !== version) throw new VersionConflictError(id, version, entry.version);
    if (result !== undefined) entry.value = result as V;
    entry.version = version + 1;
    this.list.touch(entry, this.time());
    if (this.hears('updated')) this.emit('updated', entry);
    return entry;
  }

  /** Stores a new entry accessed at `at` (`now` appends, an earlier time is placed in order). */
  private add(id: string, value: V, version: number, at: number, now: number): StoreEntry<V> {
    if (this.byId.size >= this.maxSessions) this.makeRoom(now);
    const entry = new StoreEntry(id, value, version, at);
    this.byId.set(id, entry);
    if (at === now) this.list.append(entry, now);
    else this.list.insert(entry, at);
    if (this.hears('created')) this.emit('created', entry);
    return entry;
  }

  private liveEntry(id: string, now: number): StoreEntry<V> | undefined {
    const entry = this.byId.get(id);
    if (entry === undefined) return undefined;
    if (now - entry.lastAccessAt >= this.idleTimeoutMs) {
      this.expire(entry);
      return undefined;
    }
    return entry;
  }

  private remove(entry: StoreEntry<V>): void {
    this.list.remove(entry);
    this.byId.delete(entry.id);
  }

  private expireOldest(now: number): boolean {
    const head = this.list.oldest;
    if (head === undefined || now - head.lastAccessAt < this.idleTimeoutMs) return false;
    this.expire(head);
    return true;
  }

  private expire(entry: StoreEntry<V>): void {
    this.remove(entry);
    this.counters.expiredTotal++;
    if (this.hears('expired')) this.emit('expired', entry);
  }

  /** Frees one slot for a new session: the least recently used one, unless it is active. */
  private makeRoom(now: number): void {
    while (this.byId.size >= this.maxSessions) {
      const head = this.list.oldest;
      if (head === undefined) throw new SessionLimitError(this.maxSessions);
      const idleMs = now - head.lastAccessAt;
      if (idleMs >= this.idleTimeoutMs) {
        this.expire(head);
      } else if (idleMs >= this.activeWindowMs) {
        this.remove(head);
        this.counters.evictedTotal++;
        if (this.hears('evicted')) this.emit('evicted', head);
      } else {
        throw new SessionLimitError(this.maxSessions);
      }
    }
  }

  /**
   * One clock read per operation: the injected clock, else `turnClock`, which reads
   * `Date.now()` once per event-loop turn (its comment gives the accuracy bound).
   */
  private time(): number {
    const clock = this.clock;
    return clock === undefined ? turnClock.now() : clock();
  }
}
