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
 * A session in the store and, at the same time, a node of the store's last-access list
 * (circular, doubly linked, through a sentinel). Six fields, 72 bytes: every field costs
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
  /** Towards the least recently used end; the sentinel's is the most recently used entry. */
  #older: StoreEntry<V>;
  /** Towards the most recently used end; the sentinel's is the least recently used entry. */
  #newer: StoreEntry<V>;

  constructor(id: string, value: V, version: number, lastAccessAt: number) {
    this.id = id;
    this.value = value;
    this.version = version;
    this.#accessedAt = lastAccessAt - EPOCH_MS;
    this.#older = this;
    this.#newer = this;
  }

  get lastAccessAt(): number {
    return this.#accessedAt + EPOCH_MS;
  }

  /** Sets the access time; the caller keeps the list in order. */
  setLastAccessAt(ms: number): void {
    this.#accessedAt = ms - EPOCH_MS;
  }

  get older(): StoreEntry<V> {
    return this.#older;
  }

  get newer(): StoreEntry<V> {
    return this.#newer;
  }

  /** False once removed from its list (an unlinked entry points at itself). */
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
