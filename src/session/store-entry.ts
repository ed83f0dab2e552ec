import { inspect } from 'node:util';
import type { SessionEntry } from './session-types.js';

/**
 * Timestamps are stored relative to this instant so they stay small integers: V8 keeps a
 * small integer inline in the object, a full epoch-ms value (> 2^31) needs a 16-byte heap
 * number per field. Measured at 1M sessions: 32 bytes less per session. Past ~24 days of
 * uptime the values outgrow 2^31 and V8 boxes them again: correct, just 32 bytes bigger.
 */
const EPOCH_MS = Date.now();

/**
 * A session in the store and, at the same time, a node of the store's last-access list
 * (circular, doubly linked, through a sentinel). The links and times are private fields,
 * so JSON.stringify, structuredClone, spread and test equality see a session, not a list
 * of a million.
 */
export class StoreEntry<V> implements SessionEntry<V> {
  readonly id: string;
  value: V;
  version: number;
  #createdAt: number;
  #accessedAt: number;
  /** Towards the least recently used end; the sentinel's is the most recently used entry. */
  #older: StoreEntry<V>;
  /** Towards the most recently used end; the sentinel's is the least recently used entry. */
  #newer: StoreEntry<V>;

  constructor(id: string, value: V, version: number, createdAt: number, lastAccessAt: number) {
    this.id = id;
    this.value = value;
    this.version = version;
    this.#createdAt = createdAt - EPOCH_MS;
    this.#accessedAt = lastAccessAt - EPOCH_MS;
    this.#older = this;
    this.#newer = this;
  }

  get createdAt(): number {
    return this.#createdAt + EPOCH_MS;
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

  toJSON(): { id: string; value: V; version: number; createdAt: number; lastAccessAt: number } {
    return {
      id: this.id,
      value: this.value,
      version: this.version,
      createdAt: this.createdAt,
      lastAccessAt: this.lastAccessAt,
    };
  }

  [inspect.custom](depth: number, options: object): string {
    return `SessionEntry ${inspect(this.toJSON(), { ...options, depth })}`;
  }
}
