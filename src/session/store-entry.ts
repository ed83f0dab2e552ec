import { inspect } from 'node:util';
import type { SessionEntry } from './session-types.js';

/**
 * Timestamps are stored relative to this instant so they stay small integers: V8 keeps a
 * small integer inline in the object, a full epoch-ms value (> 2^31) needs a 16-byte heap
 * number per field. Measured at 1M sessions: 32 bytes less per session (with two time fields).
 * Past ~24 days of uptime the values outgrow 2^31 and V8 boxes them again: correct, just bigger.
 */
const EPOCH_MS = Date.now();

/**
 * `ms` as an int32 when it is one. A difference of two `Date.now()` values can be a heap number
 * in V8 even when it is a small integer, and one stored made the field a double field in every
 * entry (%DebugPrint showed a HeapNumber in each). `| 0` yields a small integer (Smi); a time
 * outside int32 stays a double (correct, as before). bench/store.ts showed no change in heap
 * per session (293 B at 1M either way), so this only keeps the field what the comment above
 * says it is.
 */
function toSmallInteger(ms: number): number {
  const int = ms | 0;
  return int === ms ? int : ms;
}

/**
 * A session in the store and, at the same time, a node of one bucket of the store's access
 * wheel (access-wheel.ts: circular, doubly linked, through a sentinel per bucket). Six fields,
 * 72 bytes: every field costs
 * 8 bytes per session (8 MB at 1M), so there is no `createdAt` (nothing read it, and a
 * replicated copy could not keep it anyway). The links and the time are private fields,
 * so JSON.stringify, structuredClone, spread and test equality see a session, not a list
 * of a million.
 */
export class StoreEntry<V> implements SessionEntry<V> {
  readonly id: string;
  value: V;
  version: number;
  #accessedAt: number;
  /** Towards the head of its bucket (linked earlier); the sentinel's is the bucket's last entry. */
  #older: StoreEntry<V>;
  /** Towards the tail of its bucket (linked later); the sentinel's is the bucket's first entry. */
  #newer: StoreEntry<V>;

  constructor(id: string, value: V, version: number, lastAccessAt: number) {
    this.id = id;
    this.value = value;
    this.version = version;
    this.#accessedAt = toSmallInteger(lastAccessAt - EPOCH_MS);
    this.#older = this;
    this.#newer = this;
  }

  /**
   * A list node that is no session (a bucket's sentinel, a walk's marker). Its time is the
   * epoch itself: a time outside int32 (say 0) would turn the field into a boxed double in
   * every entry (V8 field representations are per hidden class; see toSmallInteger).
   */
  static createNode<V>(value: V): StoreEntry<V> {
    return new StoreEntry<V>('', value, 0, EPOCH_MS);
  }

  get lastAccessAt(): number {
    return this.#accessedAt + EPOCH_MS;
  }

  /** Sets the access time; the wheel refiles the entry lazily (access-wheel.ts). */
  setLastAccessAt(ms: number): void {
    this.#accessedAt = toSmallInteger(ms - EPOCH_MS);
  }

  get older(): StoreEntry<V> {
    return this.#older;
  }

  get newer(): StoreEntry<V> {
    return this.#newer;
  }

  /** False once removed from the store (an unlinked entry points at itself). */
  get isLinked(): boolean {
    return this.#newer !== this;
  }

  /** Links this (unlinked) entry just after `ref`, on the newer side. */
  linkAfter(ref: StoreEntry<V>): void {
    const newer = ref.#newer;
    this.#older = ref;
    this.#newer = newer;
    ref.#newer = this;
    newer.#older = this;
  }

  unlink(): void {
    const older = this.#older;
    const newer = this.#newer;
    older.#newer = newer;
    newer.#older = older;
    this.#older = this;
    this.#newer = this;
  }

  toJSON(): { id: string; value: V; version: number; lastAccessAt: number } {
    return {
      id: this.id,
      value: this.value,
      version: this.version,
      lastAccessAt: this.lastAccessAt,
    };
  }

  [inspect.custom](depth: number, options: object): string {
    return `SessionEntry ${inspect(this.toJSON(), { ...options, depth })}`;
  }
}
