import { VersionConflictError } from '../errors.js';
import type { CompartmentData, SessionEntry, SessionStore } from '../session/index.js';
import type { Replicator } from './replicator.js';

/** Keys remembered as having nothing to restore (first in, first out past this many). */
const MAX_ABSENT_KEYS = 10_000;
/** How long a key found with nothing to restore is not read again. */
const ABSENT_TTL_MS = 30_000;

/** Options of a SessionRestorer. */
export interface SessionRestorerOptions {
  /** The clock (tests). */
  now?: () => number;
}

/**
 * The session plugin's `restore` seam for a node that lost its memory: a restart faster than
 * the proxy's health checks, so the proxy still sends the node its sessions. A session missing
 * from the store is read from the replica store and installed if this node still owns it.
 *
 * A move (evacuate, rebalance) can take the session away while the read is out: its eviction
 * of the local copy finds nothing yet, and the installed copy would stay behind, stale and
 * never evicted. So ownership is asked once more after the install; a move after that answer
 * evicts the copy, one before it shows in the answer and the copy is dropped. (The plugin
 * holds every request of the session until the restore is done, so none writes meanwhile.)
 *
 * A key found with nothing to restore is not read again for 30 s (up to 10 000 keys): a valid
 * id whose session is gone (logged out, expired) costs a read every 30 s, not one per request.
 * Not for good: a session can still become this node's without reaching its store, e.g. given
 * back to it by a failover whose install here failed, and is then restored on a later request.
 */
export class SessionRestorer {
  /** Sessions restored since start. */
  restored = 0;
  readonly #store: SessionStore<CompartmentData>;
  readonly #replicator: Replicator;
  readonly #now: () => number;
  /** Key → when it may be read again. */
  readonly #absent = new Map<string, number>();

  constructor(
    store: SessionStore<CompartmentData>,
    replicator: Replicator,
    options: SessionRestorerOptions = {},
  ) {
    this.#store = store;
    this.#replicator = replicator;
    this.#now = options.now ?? Date.now;
  }

  /** Installs session `key` from its replica if this node owns one; rejects with ReplicaStoreError when the store cannot be read. */
  readonly restore = async (key: string): Promise<void> => {
    const retryAt = this.#absent.get(key);
    if (retryAt !== undefined) {
      if (this.#now() < retryAt) return;
      this.#absent.delete(key);
    }
    const session = await this.#replicator.read(key);
    const data = session?.data;
    if (session === undefined || data === null || typeof data !== 'object' || Array.isArray(data)) {
      this.#noteAbsent(key);
      return;
    }
    let entry: SessionEntry<CompartmentData>;
    try {
      // Accessed now: its request is under way. (Installed at its old access time, an idle
      // session would sit first in line for an eviction at maxSessions, whose removal of the
      // replica would lose it during this very restore.)
      entry = this.#store.put(key, data as CompartmentData, session.version);
    } catch (error) {
      // Installed meanwhile (a move's install) at the same or a newer version: keep that.
      if (error instanceof VersionConflictError) return;
      throw error;
    }
    let isStillOwned: boolean;
    try {
      isStillOwned = (await this.#replicator.read(key)) !== undefined;
    } catch (error) {
      // Unconfirmed: the session's requests are still held, nothing was served from the copy.
      this.#dropIfUnchanged(key, entry, session.version);
      throw error;
    }
    if (!isStillOwned) {
      this.#dropIfUnchanged(key, entry, session.version);
      return;
    }
    this.restored++;
  };

  /** Removes the installed copy unless something else (a move's install, say) replaced or wrote it since. */
  #dropIfUnchanged(key: string, entry: SessionEntry<CompartmentData>, version: number): void {
    if (this.#store.peek(key) === entry && entry.version === version) this.#store.delete(key);
  }

  #noteAbsent(key: string): void {
    if (this.#absent.size >= MAX_ABSENT_KEYS) {
      const oldest = this.#absent.keys().next().value;
      if (oldest !== undefined) this.#absent.delete(oldest);
    }
    this.#absent.set(key, this.#now() + ABSENT_TTL_MS);
  }
}
