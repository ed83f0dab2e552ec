import { BadRequestError } from '../errors.js';
import {
  compartmentSizes,
  createSessionData,
  deleteValue,
  enterCompartment,
  getValue,
  leaveCompartment,
  setValue,
  type CompartmentData,
  type JsonValue,
  type SessionEntry,
  type SessionStore,
} from '../session/index.js';

/** What a request changed in the store; handed to the plugin's `onWrite` seam (replication). */
export type SessionWrite =
  | {
      readonly kind: 'updated';
      readonly key: string;
      readonly entry: SessionEntry<CompartmentData>;
      /**
       * The first write of the session's life handed over: a request created it in the store
       * (new, or again after it was destroyed, expired or dropped here) and no write of it was
       * handed over since. A new life starts over at version 1, so a replica of an earlier life
       * of its key must go first, or it would outrank every new version (`stale`) until it
       * expired. (The node cannot tell which keys have one: a copy may have been dropped without
       * an event, by an eviction of the proxy's or a restart.)
       */
      readonly isNew: boolean;
    }
  | { readonly kind: 'deleted'; readonly key: string };

/**
 * Entries created by a request whose life no write has announced yet. Whichever request hands
 * a write of the entry over first takes the mark, not necessarily the one that made version 2:
 * two requests may finish their writes in one order and reach `onSend` in the other, and the
 * removal of an earlier life's replica must never follow (and drop) a later version of this
 * one. Weak: a mark goes with its entry, a read-only session's when it expires.
 */
const unannounced = new WeakSet<SessionEntry<CompartmentData>>();

/**
 * The session of one request, as an app sees it (`request.session`). Nothing touches the
 * store until a method or property other than `id`/`key` is used: then the session is
 * materialised (fetched, or created empty) and the request counts as having used it.
 *
 * Reads are synchronous and return copies, so app code cannot change stored data behind
 * the store's back. Writes are asynchronous: each runs through `store.updateAsync`, which
 * serialises writes per session (no lost update between interleaved requests), bumps the
 * version and fires the store's `updated` event.
 */
export class SessionHandle {
  /** The client-facing session id (`<random>.<route>.<mac>`); undefined when the request carried none. */
  readonly id: string | undefined;
  /** The store key (the random part of the id, stable across failovers); undefined without an id. */
  readonly key: string | undefined;

  readonly #store: SessionStore<CompartmentData>;
  /** Why there is no usable id (missing or malformed header); thrown on first access. */
  readonly #problem: string | undefined;
  /**
   * Set for a request whose answer never passes `onSend` (a WebSocket upgrade: the socket is
   * handed over): each write is handed to it at once, and `update` resolves only then.
   */
  readonly #writeThrough: ((write: SessionWrite) => Promise<void>) | undefined;
  readonly #unavailable: Error | undefined;
  #isUsed = false;
  #pendingWrite: SessionWrite | undefined;

  constructor(
    store: SessionStore<CompartmentData>,
    identity: { id: string; key: string } | { problem: string },
    writeThrough?: (write: SessionWrite) => Promise<void>,
    /** Why the session cannot be had (its restore failed): thrown on first use. */
    unavailable?: Error | null,
  ) {
    this.#store = store;
    this.#writeThrough = writeThrough;
    this.#unavailable = unavailable ?? undefined;
    if ('problem' in identity) {
      this.id = undefined;
      this.key = undefined;
      this.#problem = identity.problem;
    } else {
      this.id = identity.id;
      this.key = identity.key;
      this.#problem = undefined;
    }
  }

  /** True once this request has read or written the session (it then exists in the store). */
  get isUsed(): boolean {
    return this.#isUsed;
  }

  /** The session's version: bumped by every write. */
  get version(): number {
    return this.#entry().version;
  }

  /** A deep copy of the whole compartment tree; changing it changes nothing. */
  get data(): CompartmentData {
    return structuredClone(this.#entry().value);
  }

  /** The value of `key` in the compartment at `path` ('' is the root), or undefined. */
  get(key: string, path = ''): JsonValue | undefined {
    const value = getValue(this.#entry().value, path, key);
    return value !== null && typeof value === 'object' ? structuredClone(value) : value;
  }

  /** Every compartment with its approximate size in bytes. */
  compartments(): Array<{ path: string; bytes: number }> {
    return compartmentSizes(this.#entry().value);
  }

  /** Sets `key` in the compartment at `path`, entering the compartment if needed. */
  async set(key: string, value: JsonValue, path = ''): Promise<void> {
    await this.update((data) => {
      setValue(data, path, key, value);
    });
  }

  /** Removes `key` from the compartment at `path`; resolves to whether it was there. */
  async delete(key: string, path = ''): Promise<boolean> {
    return this.update((data) => deleteValue(data, path, key));
  }

  /** Enters (creates, with any missing parents) the compartment at `path`. */
  async enter(path: string): Promise<void> {
    await this.update((data) => {
      enterCompartment(data, path);
    });
  }

  /** Leaves the compartment at `path`, dropping it and all its children; resolves to whether it existed. */
  async leave(path: string): Promise<boolean> {
    return this.update((data) => leaveCompartment(data, path));
  }

  /**
   * Runs `fn` on a draft of the session data and stores the draft when `fn` settles, as one
   * versioned write serialised with every other write to this session. If `fn` throws,
   * nothing is stored. Resolves to what `fn` returned.
   */
  async update<T>(fn: (data: CompartmentData) => T | Promise<T>): Promise<T> {
    const key = this.#requireKey();
    this.#entry();
    let result: T | undefined;
    const apply = async (value: CompartmentData): Promise<CompartmentData> => {
      // A draft, so a throwing or half-finished fn leaves the stored value untouched.
      const draft = structuredClone(value);
      result = await fn(draft);
      return draft;
    };
    let entry: SessionEntry<CompartmentData>;
    try {
      entry = await this.#store.updateAsync(key, apply);
    } catch (error) {
      // Once more on a fresh value when the session was destroyed or expired while this write
      // waited (like any access, the write then materialises a new session), or when a
      // replicated copy was installed under it (`put`): fn's result would overwrite that.
      const code = (error as { code?: unknown }).code;
      if (code !== 'SLB_SESSION_NOT_FOUND' && code !== 'SLB_VERSION_CONFLICT') throw error;
      if (this.#store.peek(key) === undefined) unannounced.add(this.#store.create(key, createSessionData()));
      entry = await this.#store.updateAsync(key, apply);
    }
    this.#pendingWrite = { kind: 'updated', key, entry, isNew: false };
    if (this.#writeThrough !== undefined) {
      const write = this.takePendingWrite();
      if (write !== undefined) await this.#writeThrough(write);
    }
    return result as T;
  }

  /** Deletes the session from the store; returns whether it existed. A later access starts a fresh one. */
  destroy(): boolean {
    const key = this.#requireKey();
    const existed = this.#store.delete(key);
    this.#isUsed = false;
    this.#pendingWrite = { kind: 'deleted', key };
    if (this.#writeThrough !== undefined) {
      // Not awaited (destroy is synchronous): a failure leaves the replica to expire on its own.
      this.#writeThrough(this.takePendingWrite() as SessionWrite).catch(() => undefined);
    }
    return existed;
  }

  /** The last write of this request not yet handed to `onWrite`, cleared by the call. */
  takePendingWrite(): SessionWrite | undefined {
    const write = this.#pendingWrite;
    this.#pendingWrite = undefined;
    if (write?.kind !== 'updated') return write;
    // Its entry is no longer the session (another request destroyed it, maybe began a new life,
    // while this one went on): replicated now, it would bring back what the destroy removed.
    if (this.#store.peek(write.key) !== write.entry) return undefined;
    if (unannounced.delete(write.entry)) return { ...write, isNew: true };
    return write;
  }

  #requireKey(): string {
    if (this.#unavailable !== undefined) throw this.#unavailable;
    if (this.key === undefined) throw new BadRequestError(this.#problem ?? 'no session id');
    return this.key;
  }

  /** The stored version now, without creating the session (0 if it is gone). */
  get storedVersion(): number {
    return this.key === undefined ? 0 : (this.#store.peek(this.key)?.version ?? 0);
  }

  /** The live entry, fetched (touching it once per request) or created empty. */
  #entry(): SessionEntry<CompartmentData> {
    const key = this.#requireKey();
    const entry = this.#isUsed ? this.#store.peek(key) : this.#store.get(key);
    this.#isUsed = true;
    if (entry !== undefined) return entry;
    const created = this.#store.create(key, createSessionData());
    unannounced.add(created);
    return created;
  }
}
