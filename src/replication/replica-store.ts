import type { JsonValue } from '../session/index.js';

export type { JsonValue };

/** One replicated session: its data at `version`, and the node that owns (may write) it. */
export interface ReplicaRecord {
  /** The session's store key (the random part of its id, stable across failovers). */
  key: string;
  /** The node's version of the session; a replica only ever moves to a higher one. */
  version: number;
  /** Id of the node allowed to write, touch and remove it (`nodes[].id`). */
  owner: string;
  data: JsonValue;
  /** When the session was last used (ms since the epoch); drives idle expiry in the replica. */
  lastAccessAt: number;
}

/** What a node writes: a record without `owner` (the writer becomes the owner). */
export type ReplicaWrite = Omit<ReplicaRecord, 'owner'>;

/**
 * Throws RangeError for a record no store may apply, checked for a whole batch before any of
 * it is: a NaN or fractional version compares false both ways and would break stale detection
 * for good; a time that is not integer ms would break idle expiry.
 */
export function assertReplicaWrites(records: ReadonlyArray<ReplicaWrite>): void {
  for (const { version, lastAccessAt } of records) {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new RangeError(`replica version must be a positive integer, got ${String(version)}`);
    }
    if (!Number.isSafeInteger(lastAccessAt) || lastAccessAt < 0) {
      throw new RangeError(
        `replica lastAccessAt must be a non-negative integer, got ${String(lastAccessAt)}`,
      );
    }
  }
}

/**
 * Outcome of one record of `ReplicaStore.write`: `ok` applied; `stale` refused because the
 * store holds the same or a newer version; `not-owner` refused because another node owns the key.
 */
export type WriteOutcome = 'ok' | 'stale' | 'not-owner';

/** Counters of a replica store since it was created; cheap to read. */
export interface ReplicaStoreStats {
  /** Replicas held (may include some that expired since the last sweep). */
  records: number;
  /** `write` calls: one per batch a node sends. */
  writeCalls: number;
  /** Records applied (`ok`). */
  writes: number;
  staleRejected: number;
  notOwnerRejected: number;
  /** `touch` calls: one per touch batch a node sends. */
  touchCalls: number;
  /** Replicas whose idle time a touch restarted. */
  touches: number;
  /** Replicas removed by their owner. */
  removes: number;
  /** Successful transfers (failover moves). */
  transfers: number;
  /** Replicas that expired idle (or were evicted by a size bound). */
  expired: number;
}

/** Every replica-store counter at zero (each implementation counts into one of these). */
export function emptyReplicaStats(): ReplicaStoreStats {
  return {
    records: 0,
    writeCalls: 0,
    writes: 0,
    staleRejected: 0,
    notOwnerRejected: 0,
    touchCalls: 0,
    touches: 0,
    removes: 0,
    transfers: 0,
    expired: 0,
  };
}

/**
 * Where nodes replicate their sessions and where failover reads them back. Implementations
 * (memory, redis) are interchangeable and all pass test/replication/replica-store.contract.ts.
 *
 * Ownership is the fencing token: every write, touch and remove names its writer, and only
 * the owner's count. A failover moves ownership with `transfer`, so a node that was cut off
 * while its sessions moved cannot overwrite them when it comes back.
 */
export interface ReplicaStore {
  /**
   * Writes records from node `writer`, in order; one outcome per record. Per record:
   * `not-owner` if the key exists and another node owns it (checked first: a fenced node
   * must learn the session moved, whatever version it sends); else `stale` if `version` ≤
   * the stored version (never applied); else applied (`ok`) with owner = writer. A key that
   * does not exist (never written, removed, expired) is applied at any version: a session
   * destroyed and then re-created on its node starts again at version 1.
   */
  write(writer: string, records: ReadonlyArray<ReplicaWrite>): Promise<WriteOutcome[]>;
  /** The live replica of `key`, or undefined (never written, removed or expired). */
  read(key: string): Promise<ReplicaRecord | undefined>;
  /** `read` for many keys; the result is in the order of `keys`. */
  readMany(keys: readonly string[]): Promise<Array<ReplicaRecord | undefined>>;
  /**
   * Restarts the idle time of sessions only read on the node, so they do not expire in the
   * replica while alive there. Only the owner's touches count; unknown keys are ignored.
   * `at` is when the node saw the access; a store may use its own clock instead (later by
   * at most the node's touch interval, so a replica lives slightly longer, never shorter).
   */
  touch(writer: string, keys: readonly string[], at?: number): Promise<void>;
  /** Removes sessions destroyed on the node. Only the owner may remove; other and unknown keys are ignored. */
  remove(writer: string, keys: readonly string[]): Promise<void>;
  /**
   * The failover primitive, atomic per key: if `from` owns the key, makes `to` the owner
   * and returns the record (version, data and access time unchanged); else undefined
   * (another caller moved it, or it is gone). Of concurrent transfers of one key from the
   * same owner, exactly one wins.
   */
  transfer(key: string, from: string, to: string): Promise<ReplicaRecord | undefined>;
  /** Keys owned by a node, in no particular order (evacuate, recovery after a proxy restart). */
  keysOf(owner: string): Promise<string[]>;
  /** Live replicas per owner node; owners with none are absent (the dashboard's `nodes[].replicas`). */
  countsByOwner(): Promise<Map<string, number>>;
  /**
   * Random id of this store's lifetime. When a node sees it change (the proxy restarted and
   * a memory store lost everything) it writes all its sessions again (`Replicator.seed`).
   */
  readonly epoch: string;
  /** Counters since creation. */
  stats(): ReplicaStoreStats;
  /** Releases timers and connections; later calls reject with ReplicaStoreError. */
  close(): Promise<void>;
}
