import { randomBytes } from 'node:crypto';
import { ReplicaStoreError, SessionLimitError } from '../errors.js';
import { SessionStore, type JsonValue, type SessionEntry } from '../session/index.js';
import type {
  ReplicaRecord,
  ReplicaStore,
  ReplicaStoreStats,
  ReplicaWrite,
  WriteOutcome,
} from './replica-store.js';
import { assertReplicaWrites, emptyReplicaStats } from './replica-store.js';

/** Options of a MemoryReplicaStore; durations in milliseconds. */
export interface MemoryReplicaStoreOptions {
  /** A replica not written or touched by its owner for this long expires (`session.idleTimeout`). */
  idleTimeoutMs: number;
  /**
   * Upper bound on replicas (default Infinity; StickyLb gives `session.maxSessions` × nodes).
   * A full store refuses new replicas (the node's write fails, 503): it never evicts one, as
   * every replica is of a session alive on its node until it expires.
   */
  maxSessions?: number;
  /** Period of the sweep started by `start()` (default 1000). */
  sweepIntervalMs?: number;
  /** Wall clock in ms (default: the session store's, `Date.now()` read once per event-loop turn). */
  now?: () => number;
}

/**
 * What the session store holds per replica. The version lives in the store entry, so the
 * store's own `put` refuses stale versions; `owner` is fencing metadata, not session data.
 */
interface ReplicaSlot {
  owner: string;
  readonly data: JsonValue;
}

/**
 * The `memory` replica store, hosted by the proxy's control plane. It is a SessionStore of
 * `{owner, data}`: the store's versions refuse stale writes, its idle expiry and sweeper
 * expire replicas of sessions their node stopped using, and `maxSessions` bounds it.
 *
 * Every method runs synchronously to completion (the promises are only the interface's
 * shape), so each call is atomic: that is what makes `transfer` exactly-once.
 *
 * Records keep the `data` objects they are given and `read` returns them: callers must not
 * mutate either (the replication server hands in freshly parsed JSON).
 */
export class MemoryReplicaStore implements ReplicaStore {
  readonly epoch = randomBytes(12).toString('base64url');
  readonly #sessions: SessionStore<ReplicaSlot>;
  #isClosed = false;
  readonly #counts = emptyReplicaStats();
  /** Live replicas per owner, kept on every change so the dashboard's count needs no pass over them all. */
  readonly #perOwner = new Map<string, number>();

  constructor(options: MemoryReplicaStoreOptions) {
    this.#sessions = new SessionStore<ReplicaSlot>({
      idleTimeoutMs: options.idleTimeoutMs,
      // Active for its whole life: the store's eviction of idle entries when full must never
      // take a replica (the session is alive on its node), only an expired one makes room.
      activeWindowMs: options.idleTimeoutMs,
      ...(options.maxSessions !== undefined ? { maxSessions: options.maxSessions } : {}),
      ...(options.sweepIntervalMs !== undefined ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
    });
    // Counted on the store's own events, so a replica expiring between a check and a write is
    // counted out and back in like any other.
    this.#sessions.on('created', (entry) => this.#countOwner(entry.value.owner, 1));
    const release = (entry: SessionEntry<ReplicaSlot>): void => this.#countOwner(entry.value.owner, -1);
    this.#sessions.on('expired', release);
    // Never while the active window is the idle timeout (every live replica is active), but
    // the count must not depend on that.
    this.#sessions.on('evicted', release);
    this.#sessions.on('deleted', release);
  }

  /** Starts the periodic sweep of expired replicas (one unref'd timer). */
  start(): void {
    this.#assertOpen();
    this.#sessions.start();
  }

  async write(writer: string, records: ReadonlyArray<ReplicaWrite>): Promise<WriteOutcome[]> {
    this.#assertOpen();
    const counts = this.#counts;
    counts.writeCalls++;
    // Validated up front: a bad record must not leave half a batch applied.
    assertReplicaWrites(records);
    const outcomes: WriteOutcome[] = new Array<WriteOutcome>(records.length);
    for (let i = 0; i < records.length; i++) {
      const record = records[i] as ReplicaWrite;
      const existing = this.#sessions.peek(record.key);
      if (existing !== undefined && existing.value.owner !== writer) {
        counts.notOwnerRejected++;
        outcomes[i] = 'not-owner';
      } else if (existing !== undefined && record.version <= existing.version) {
        counts.staleRejected++;
        outcomes[i] = 'stale';
      } else {
        try {
          this.#sessions.put(
            record.key,
            { owner: writer, data: record.data },
            record.version,
            record.lastAccessAt,
          );
        } catch (error) {
          // Records before this one stay applied: each is complete on its own, and the
          // node's sync write fails, so nothing unreplicated is acknowledged.
          if (error instanceof SessionLimitError) {
            throw new ReplicaStoreError(`replica store full: ${error.message}`, { cause: error });
          }
          throw error;
        }
        counts.writes++;
        outcomes[i] = 'ok';
      }
    }
    return outcomes;
  }

  async read(key: string): Promise<ReplicaRecord | undefined> {
    this.#assertOpen();
    const entry = this.#sessions.peek(key);
    return entry === undefined ? undefined : toRecord(entry);
  }

  async readMany(keys: readonly string[]): Promise<Array<ReplicaRecord | undefined>> {
    this.#assertOpen();
    return keys.map((key) => {
      const entry = this.#sessions.peek(key);
      return entry === undefined ? undefined : toRecord(entry);
    });
  }

  async touch(writer: string, keys: readonly string[]): Promise<void> {
    this.#assertOpen();
    this.#counts.touchCalls++;
    for (const key of keys) {
      if (this.#sessions.peek(key)?.value.owner === writer && this.#sessions.touch(key)) {
        this.#counts.touches++;
      }
    }
  }

  async remove(writer: string, keys: readonly string[]): Promise<void> {
    this.#assertOpen();
    for (const key of keys) {
      if (this.#sessions.peek(key)?.value.owner === writer && this.#sessions.delete(key)) {
        this.#counts.removes++;
      }
    }
  }

  async transfer(key: string, from: string, to: string): Promise<ReplicaRecord | undefined> {
    this.#assertOpen();
    const entry = this.#sessions.peek(key);
    if (entry === undefined || entry.value.owner !== from) return undefined;
    // The owner changes in place: the data did not change, so neither may the version (the
    // new owner continues from it), and a failover is not a use of the session (no touch).
    entry.value.owner = to;
    this.#countOwner(from, -1);
    this.#countOwner(to, 1);
    this.#counts.transfers++;
    return toRecord(entry);
  }

  async keysOf(owner: string): Promise<string[]> {
    this.#assertOpen();
    // One pass over all replicas (25-75 ms per million here): failover and recovery are rare,
    // and an index per owner would cost memory on every replica for them.
    return this.#sessions.idsWhere((entry) => entry.value.owner === owner);
  }

  async countsByOwner(): Promise<Map<string, number>> {
    this.#assertOpen();
    // Replicas expired since the last sweep still count until it runs (at most a sweep interval).
    return new Map(this.#perOwner);
  }

  stats(): ReplicaStoreStats {
    const metrics = this.#sessions.metrics();
    return {
      ...this.#counts,
      records: this.#sessions.size,
      expired: metrics.expiredTotal + metrics.evictedTotal,
    };
  }

  async close(): Promise<void> {
    this.#isClosed = true;
    this.#sessions.stop();
  }

  #countOwner(owner: string, delta: number): void {
    const count = (this.#perOwner.get(owner) ?? 0) + delta;
    if (count > 0) this.#perOwner.set(owner, count);
    else this.#perOwner.delete(owner);
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new ReplicaStoreError('replica store is closed');
  }
}

function toRecord(entry: SessionEntry<ReplicaSlot>): ReplicaRecord {
  return {
    key: entry.id,
    version: entry.version,
    owner: entry.value.owner,
    data: entry.value.data,
    lastAccessAt: entry.lastAccessAt,
  };
}
