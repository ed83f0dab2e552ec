import { performance } from 'node:perf_hooks';
import { StoreEntry } from './store-entry.js';

/** Time-boxed walks read the clock once per this many entries. */
export const CLOCK_CHECK_EVERY = 64;
/** How far `insert` walks back from the newest entry to place an entry with an older access time. */
const MAX_PLACEMENT_STEPS = 1024;

/**
 * Store entries in last-access order, least recent first, linked through the entries
 * themselves: touching is O(1), and whatever expires first sits at the head, so a sweep
 * pops from there and stops at the first live entry.
 *
 * It also counts the active entries (accessed within `activeWindowMs`) without walking
 * them: they are a suffix of the list. Every entry from `firstActive` on was accessed after
 * `activeSince`, every entry before it at or before; the boundary only moves forward, so
 * keeping the count costs O(1) per entry that turns idle.
 */
export class AccessList<V> {
  /** `sentinel.newer` is the least recently used entry, `sentinel.older` the most. */
  private readonly sentinel: StoreEntry<V>;
  private readonly activeWindowMs: number;
  private activeSince = -Infinity;
  private firstActive: StoreEntry<V>;
  private active = 0;

  constructor(activeWindowMs: number, now: number) {
    this.activeWindowMs = activeWindowMs;
    this.sentinel = new StoreEntry<V>('', undefined as V, 0, now);
    this.firstActive = this.sentinel;
  }

  /** Entries accessed after `activeSince` (as of the last `advanceActive`). */
  get activeCount(): number {
    return this.active;
  }

  /** The least recently used entry. */
  get oldest(): StoreEntry<V> | undefined {
    const entry = this.sentinel.newer;
    return entry === this.sentinel ? undefined : entry;
  }

  /** The most recently used entry. */
  get newest(): StoreEntry<V> | undefined {
    const entry = this.sentinel.older;
    return entry === this.sentinel ? undefined : entry;
  }

  newerThan(entry: StoreEntry<V>): StoreEntry<V> | undefined {
    const newer = entry.newer;
    return newer === this.sentinel ? undefined : newer;
  }

  olderThan(entry: StoreEntry<V>): StoreEntry<V> | undefined {
    const older = entry.older;
    return older === this.sentinel ? undefined : older;
  }

  /** Entries from the most recently used back. */
  *newestFirst(): IterableIterator<StoreEntry<V>> {
    for (let entry = this.sentinel.older; entry !== this.sentinel; entry = entry.older) yield entry;
  }

  /**
   * Entries accessed after `since`, least recently used first. Deleting, touching or updating
   * the entry just yielded is safe (a touched entry is not visited again); removing other
   * entries mid-iteration may end it early. `count` bounds the walk.
   */
  *accessedAfter(since: number, count: number): IterableIterator<StoreEntry<V>> {
    const last = this.sentinel.older;
    let remaining = count;
    let entry = this.sentinel.newer;
    while (entry !== this.sentinel && remaining-- > 0) {
      const next = entry.newer;
      if (entry.lastAccessAt > since) yield entry;
      if (entry === last || (next !== this.sentinel && !next.isLinked)) return;
      entry = next;
    }
  }

  /**
   * Ids of the entries accessed after `since` that `select` accepts, least recently used first
   * or, with `newestFirst`, most recently used first. A plain loop, not a generator: listing a
   * node's sessions when it goes down walks the whole list, and at 1M entries the nested
   * generators of `accessedAfter` took 70-120 ms of the proxy's event loop, this 17-26 ms.
   * `select` must not change the store.
   */
  idsWhere(since: number, select: (entry: StoreEntry<V>) => boolean, newestFirst: boolean): string[] {
    const ids: string[] = [];
    const sentinel = this.sentinel;
    if (newestFirst) {
      // Entries are in access order: the first one not accessed after `since` ends the walk.
      for (
        let entry = sentinel.older;
        entry !== sentinel && entry.lastAccessAt > since;
        entry = entry.older
      ) {
        if (select(entry)) ids.push(entry.id);
      }
    } else {
      let entry = sentinel.newer;
      while (entry !== sentinel && entry.lastAccessAt <= since) entry = entry.newer;
      for (; entry !== sentinel; entry = entry.newer) if (select(entry)) ids.push(entry.id);
    }
    return ids;
  }

  /** Links a new entry as the most recent one, accessed at `now`. */
  append(entry: StoreEntry<V>, now: number): void {
    const tail = this.sentinel.older;
    // A clock that stepped back must not break the order: never go below the newest entry.
    const at = tail !== this.sentinel && now < tail.lastAccessAt ? tail.lastAccessAt : now;
    entry.setLastAccessAt(at);
    entry.linkAfter(tail);
    this.noteLinked(entry, at);
  }

  /** Marks an access at `now`: the entry becomes the most recent one. */
  touch(entry: StoreEntry<V>, now: number): void {
    const tail = this.sentinel.older;
    if (entry !== tail) {
      this.remove(entry);
      this.append(entry, now);
      return;
    }
    const previous = entry.lastAccessAt;
    if (now <= previous) return;
    entry.setLastAccessAt(now);
    // The newest entry was not active, so none was: it becomes the first.
    if (previous <= this.activeSince && now > this.activeSince) {
      this.active++;
      this.firstActive = entry;
    }
  }

  /**
   * Links an unlinked entry where its access time `at` belongs. One older than the
   * `MAX_PLACEMENT_STEPS` newest entries (but newer than the oldest) takes the access time
   * of the entry it lands after: it lives slightly longer, never shorter, and placing a
   * replicated copy stays cheap.
   */
  insert(entry: StoreEntry<V>, at: number): void {
    let after = this.sentinel.older;
    if (after !== this.sentinel && after.lastAccessAt > at) {
      if (at <= this.sentinel.newer.lastAccessAt) {
        after = this.sentinel;
      } else {
        for (let steps = 0; after.lastAccessAt > at && steps < MAX_PLACEMENT_STEPS; steps++) {
          after = after.older;
        }
        if (after.lastAccessAt > at) at = after.lastAccessAt;
      }
    }
    entry.setLastAccessAt(at);
    entry.linkAfter(after);
    this.noteLinked(entry, at);
  }

  remove(entry: StoreEntry<V>): void {
    if (entry.lastAccessAt > this.activeSince) {
      this.active--;
      if (this.firstActive === entry) this.firstActive = entry.newer;
    }
    entry.unlink();
  }

  /**
   * Moves the active boundary past entries no longer active at `now`. With `started` ≥ 0
   * it is time-boxed like a sweep slice (`sliceMs` from `started`, on performance.now())
   * and returns false when cut short; it only stops between two different access times, so
   * the boundary invariant holds while it waits.
   */
  advanceActive(now: number, started = -1, sliceMs = 0): boolean {
    const since = now - this.activeWindowMs;
    if (since <= this.activeSince) return true;
    let first = this.firstActive;
    let steps = 0;
    while (first !== this.sentinel) {
      const at = first.lastAccessAt;
      if (at > since) break;
      first = first.newer;
      this.active--;
      // The clock is due every 64 steps, read at the next change of access time: requiring
      // both on the same step skipped nearly every check when hundreds of sessions share a
      // millisecond (a 12 ms slice at 1M sessions in bench/store.ts).
      if (
        started >= 0 &&
        ++steps >= CLOCK_CHECK_EVERY &&
        first !== this.sentinel &&
        first.lastAccessAt > at
      ) {
        steps = 0;
        if (performance.now() - started >= sliceMs) {
          this.firstActive = first;
          this.activeSince = at;
          return false;
        }
      }
    }
    this.firstActive = first;
    this.activeSince = since;
    return true;
  }

  private noteLinked(entry: StoreEntry<V>, at: number): void {
    if (at > this.activeSince) {
      this.active++;
      if (entry.newer === this.firstActive) this.firstActive = entry;
    }
  }
}
