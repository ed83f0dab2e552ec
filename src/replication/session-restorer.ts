import { VersionConflictError } from '../errors.js';
import type { CompartmentData, SessionEntry, SessionStore } from '../session/index.js';
import type { Replicator } from './replicator.js';

/** Keys remembered as having nothing to restore (first in, first out past this many). */
const MAX_ABSENT_KEYS = 10_000;

/** Options of a SessionRestorer; durations in milliseconds. */
export interface SessionRestorerOptions {
  /**
   * How long after its start the node may find replicas of sessions it lost: the idle
   * timeout plus the touch and flush intervals. A replica this process did not write or touch
   * expires within that; later, a missing session is just gone, and costs no read.
   */
  windowMs: number;
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
 * evicts the copy, one before it shows in the answer and the copy is dropped.
 *
 * Keys found with nothing to restore are remembered (bounded): none can gain a replica this
 * node owns except by this node's own writes or a move here, both of which put the session in
 * the store, which is asked first. So a valid id whose session is gone (logged out, expired)
 * costs one read, not one per request.
 */
export class SessionRestorer {
  /** Sessions restored since start. */
  restored = 0;
  readonly #store: SessionStore<CompartmentData>;
  readonly #replicator: Replicator;
  readonly #until: number;
  readonly #now: () => number;
  readonly #absent = new Set<string>();

  constructor(store: SessionStore<CompartmentData>, replicator: Replicator, options: SessionRestorerOptions) {
    this.#store = store;
    this.#replicator = replicator;
    this.#now = options.now ?? Date.now;
    this.#until = this.#now() + options.windowMs;
  }

  /** Installs session `key` from its replica if this node owns one; rejects with ReplicaStoreError when the store cannot be read. */
  readonly restore = async (key: string): Promise<void> => {
    if (this.#absent.has(key) || this.#now() >= this.#until) return;
    const session = await this.#replicator.read(key);
    const data = session?.data;
    if (session === undefined || data === null || typeof data !== 'object' || Array.isArray(data)) {
      this.#noteAbsent(key);
      return;
    }
    let entry: SessionEntry<CompartmentData>;
    try {
      entry = this.#store.put(key, data as CompartmentData, session.version, session.lastAccessAt);
    } catch (error) {
      // Installed meanwhile (a move's install) at the same or a newer version: keep that.
      if (error instanceof VersionConflictError) return;
      throw error;
    }
    let isStillOwned: boolean;
    try {
      isStillOwned = (await this.#replicator.read(key)) !== undefined;
    } catch (error) {
      // Unconfirmed: nothing was served from the copy yet, so it goes, and the request fails.
      this.#dropIfSame(key, entry);
      throw error;
    }
    if (!isStillOwned) {
      this.#dropIfSame(key, entry);
      return;
    }
    this.restored++;
  };

  #dropIfSame(key: string, entry: SessionEntry<CompartmentData>): void {
    if (this.#store.peek(key) === entry) this.#store.delete(key);
  }

  #noteAbsent(key: string): void {
    if (this.#absent.size >= MAX_ABSENT_KEYS) {
      const oldest = this.#absent.values().next().value;
      if (oldest !== undefined) this.#absent.delete(oldest);
    }
    this.#absent.add(key);
  }
}
