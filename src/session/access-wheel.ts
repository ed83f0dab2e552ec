import { StoreEntry } from './store-entry.js';

/** Most buckets a wheel has: bounds the sentinels (72 bytes each, made lazily) and the empty buckets a walk may pass. */
const MAX_BUCKETS = 4096;
/** Longer idle timeouts (Infinity: never expire) size the wheel as this one, ~35 years. */
const MAX_SPAN_MS = 2 ** 40;
/** The `value` of bucket sentinels and of the sweep's marker: no session can hold it. */
const BUCKET_END = Symbol('bucket end');

/** Where a walk at some quantum leaves an entry (see `AccessWheel.#place`). */
const IN_ORDER = 0;
const MOVED = 1;
const LATER = 2;

/** What the sweep needs of the store (a method: SessionStore<V> stays assignable across V, as before). */
export interface ExpiringStore<V> {
  /** Removes an expired entry from the store, unlinking it from the wheel. */
  expire(entry: StoreEntry<V>): void;
}

/**
 * The width of a wheel bucket for an idle timeout: 1 ms up to a 4.1 s timeout, then
 * `idleTimeoutMs / 4096` (440 ms for 30 minutes). Order among sessions (eviction, `entries()`)
 * is exact to this; expiry is exact regardless.
 */
export function accessQuantumMs(idleTimeoutMs: number): number {
  return Math.max(1, Math.ceil(Math.min(idleTimeoutMs, MAX_SPAN_MS) / MAX_BUCKETS));
}

/**
 * Store entries in buckets by access time (a timing wheel), linked through the entries
 * themselves. A touch does not move an entry (the store only writes its `lastAccessAt`): it
 * stays in the bucket of the time it had when linked, and a walk that reaches it there relinks
 * it lazily into the bucket of its real access time, so each session is relinked at most
 * about once per idle timeout instead of once per request.
 *
 * Buckets are `quantumMs` wide; bucket of quantum q is slot q mod `bucketCount`, and
 * `bucketCount × quantumMs` exceeds the idle timeout by two quanta, so two quanta that hold
 * live sessions never share a slot. Walks go from `#oldest`, the lowest quantum that may hold
 * an entry in order, and judge every entry by its real access time: expired, in order here,
 * or touched since (relinked forward). A slot can still hold entries of a quantum one turn of
 * the ring later (when no sweep ran for longer than the idle timeout): they stay where they are
 * and are taken in order when the walk reaches their quantum.
 */
export class AccessWheel<V> {
  readonly quantumMs: number;
  readonly #idleTimeoutMs: number;
  readonly #store: ExpiringStore<V>;
  readonly #bucketCount: number;
  readonly #sentinels: Array<StoreEntry<V> | undefined>;
  /** No entry sits in order in a quantum below this; Infinity when empty. */
  #oldest = Infinity;
  /** No entry is linked in a quantum above this. */
  #newest = -Infinity;
  #size = 0;
  /** The bucket `link` used last, and its time range: creates in a row skip the division and `%`. */
  #tailQuantum = Number.NaN;
  #tailFromMs = Infinity;
  #tailUntilMs = -Infinity;
  #tailSentinel: StoreEntry<V> | undefined;
  /** The sweep's place in the bucket of `#markerQuantum`, kept there between slices. */
  readonly #marker: StoreEntry<V>;
  #markerQuantum = Number.NaN;

  constructor(idleTimeoutMs: number, store: ExpiringStore<V>) {
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#store = store;
    this.quantumMs = accessQuantumMs(idleTimeoutMs);
    this.#bucketCount = Math.ceil(Math.min(idleTimeoutMs, MAX_SPAN_MS) / this.quantumMs) + 2;
    this.#sentinels = new Array<StoreEntry<V> | undefined>(this.#bucketCount).fill(undefined);
    this.#marker = StoreEntry.createNode(BUCKET_END as V);
  }

  /** Links an unlinked entry into the bucket of `at`, its access time. */
  link(entry: StoreEntry<V>, at: number): void {
    this.#size++;
    const sentinel = this.#tailSentinel;
    if (at >= this.#tailFromMs && at < this.#tailUntilMs && sentinel !== undefined) {
      entry.linkAfter(sentinel.older);
      const quantum = this.#tailQuantum;
      if (quantum < this.#oldest) this.#oldest = quantum;
      if (quantum > this.#newest) this.#newest = quantum;
      return;
    }
    const quantum = Math.floor(at / this.quantumMs);
    this.#linkAt(entry, quantum);
    this.#tailQuantum = quantum;
    this.#tailFromMs = quantum * this.quantumMs;
    this.#tailUntilMs = this.#tailFromMs + this.quantumMs;
    this.#tailSentinel = this.#sentinels[this.#slotOf(quantum)];
  }

  unlink(entry: StoreEntry<V>): void {
    entry.unlink();
    if (--this.#size === 0) {
      this.#oldest = Infinity;
      this.#newest = -Infinity;
    }
  }

  /**
   * One step of a sweep at `now`: expires one entry (through the store's `expire`),
   * relinks one, or moves on. 1 when it expired one, 0 for any other work, -1 when the sweep is
   * done. Buckets wholly past the idle timeout are emptied of expired entries and of touched
   * ones; in the bucket holding the limit each entry is checked, so expiry stays exact.
   */
  sweepStep(now: number): number {
    const limit = Math.floor((now - this.#idleTimeoutMs) / this.quantumMs);
    let quantum = this.#oldest;
    if (quantum > limit) return this.#endSweep();
    // Unswept for over a turn of the ring: one turn visits every slot.
    if (quantum <= limit - this.#bucketCount) quantum = this.#oldest = limit - this.#bucketCount + 1;
    const sentinel = this.#sentinels[this.#slotOf(quantum)];
    const marker = this.#marker;
    if (sentinel === undefined) {
      this.#oldest = quantum + 1;
      return 0;
    }
    if (this.#markerQuantum !== quantum) {
      marker.unlink();
      marker.linkAfter(sentinel);
      this.#markerQuantum = quantum;
    }
    const entry = marker.newer;
    if (entry === sentinel) {
      if (quantum === limit) return this.#endSweep();
      marker.unlink();
      this.#markerQuantum = Number.NaN;
      this.#oldest = quantum + 1;
      return 0;
    }
    const at = entry.lastAccessAt;
    if (now - at >= this.#idleTimeoutMs) {
      this.#store.expire(entry);
      return 1;
    }
    if (this.#place(entry, quantum, this.#endOf(now), at) !== MOVED) {
      marker.unlink();
      marker.linkAfter(entry);
    }
    return 0;
  }

  /**
   * The least recently used entry (exact to a quantum; an expired one may come first),
   * relinking the touched entries it passes; undefined when empty.
   */
  leastRecent(now: number): StoreEntry<V> | undefined {
    const end = this.#endOf(now);
    for (let quantum = this.#startOf(end); quantum <= end; quantum++) {
      const sentinel = this.#sentinels[this.#slotOf(quantum)];
      if (sentinel === undefined) continue;
      let entry = sentinel.newer;
      while (entry !== sentinel) {
        const next = entry.newer;
        if (entry !== this.#marker) {
          const at = entry.lastAccessAt;
          if (now - at >= this.#idleTimeoutMs || this.#place(entry, quantum, end, at) === IN_ORDER) {
            this.#oldest = quantum;
            return entry;
          }
        }
        entry = next;
      }
    }
    return undefined;
  }

  /**
   * Entries accessed after `since`, least recently used first (exact to a quantum), relinking
   * touched ones on the way; at most `limit`. Deleting, touching or updating the entry just
   * yielded is safe (it is not visited again); removing other entries mid-iteration may end it
   * early, and moving them (a sweep, an eviction) may skip or repeat some.
   */
  *accessedAfter(since: number, now: number, limit: number): IterableIterator<StoreEntry<V>> {
    const end = this.#endOf(now);
    const start = this.#startOf(end);
    let remaining = limit;
    for (let quantum = start; quantum <= end; quantum++) {
      const sentinel = this.#sentinels[this.#slotOf(quantum)];
      if (sentinel === undefined) continue;
      // On a walk of two turns a slot is met twice: an entry older than the turn that ends here
      // was in order, and yielded, at the first meeting.
      const turnStart = quantum - this.#bucketCount < start ? -Infinity : quantum - this.#bucketCount + 1;
      // Ends at any sentinel: one moved meanwhile to another bucket still ends the walk of this one.
      for (let entry = sentinel.newer; entry.value !== BUCKET_END || entry === this.#marker;) {
        const next = entry.newer;
        if (entry !== this.#marker) {
          const at = entry.lastAccessAt;
          if (
            at > since &&
            this.#place(entry, quantum, end, at) === IN_ORDER &&
            Math.floor(at / this.quantumMs) >= turnStart
          ) {
            if (remaining-- <= 0) return;
            yield entry;
            if (!next.isLinked) return;
          }
        }
        entry = next;
      }
    }
  }

  /** Entries from the newest bucket back (in link order within a bucket): a sample of recent sessions. */
  *newestFirst(): IterableIterator<StoreEntry<V>> {
    const first = Math.max(this.#oldest, this.#newest - this.#bucketCount + 1);
    for (let quantum = this.#newest; quantum >= first; quantum--) {
      const sentinel = this.#sentinels[this.#slotOf(quantum)];
      if (sentinel === undefined) continue;
      for (let entry = sentinel.older; entry !== sentinel; entry = entry.older) {
        if (entry !== this.#marker) yield entry;
      }
    }
  }

  /**
   * Files an entry met at `quantum` by its real access time `at`: IN_ORDER when it belongs
   * here (or after the walk's `end`: a clock that stepped back), MOVED when relinked into a
   * later bucket, LATER when that bucket is this very slot a turn of the ring on (it stays).
   */
  #place(entry: StoreEntry<V>, quantum: number, end: number, at: number): number {
    const real = Math.floor(at / this.quantumMs);
    if (real <= quantum || real > end) return IN_ORDER;
    if (this.#slotOf(real) === this.#slotOf(quantum)) return LATER;
    entry.unlink();
    this.#linkAt(entry, real);
    return MOVED;
  }

  #linkAt(entry: StoreEntry<V>, quantum: number): void {
    const slot = this.#slotOf(quantum);
    let sentinel = this.#sentinels[slot];
    if (sentinel === undefined) {
      sentinel = StoreEntry.createNode(BUCKET_END as V);
      this.#sentinels[slot] = sentinel;
    }
    entry.linkAfter(sentinel.older);
    if (quantum < this.#oldest) this.#oldest = quantum;
    if (quantum > this.#newest) this.#newest = quantum;
  }

  /** The last quantum a walk at `now` visits: now's, or a later one linked before the clock stepped back. */
  #endOf(now: number): number {
    return Math.max(Math.floor(now / this.quantumMs), this.#newest);
  }

  /**
   * The first quantum a walk up to `end` visits: `#oldest`, or two turns of the ring back at
   * most. One turn back is not enough: when no sweep ran for a while, buckets older than
   * `end - bucketCount` (expired entries, and touched ones filed there) share their slots with
   * the newest buckets, and a walk of one turn would meet them last, at the newest time. Two
   * turns meet them first; entries of a newer quantum met in the same slot then are relinked or
   * wait (LATER) for their own quantum, which the walk still reaches. An entry filed further
   * back sits in a slot the walk meets twice and is judged by its own access time each time.
   */
  #startOf(end: number): number {
    return Math.max(this.#oldest, end - 2 * this.#bucketCount + 2);
  }

  #endSweep(): number {
    this.#marker.unlink();
    this.#markerQuantum = Number.NaN;
    return -1;
  }

  #slotOf(quantum: number): number {
    const slot = quantum % this.#bucketCount;
    return slot < 0 ? slot + this.#bucketCount : slot;
  }
}
