import { ReplicaStoreError } from '../errors.js';
import type { CompartmentData, JsonValue } from '../session/index.js';
import { KEY_PATTERN, MAX_BODY_BYTES, MAX_RECORDS_PER_REQUEST } from './replication-protocol.js';

/** Settles one caller of `Replicator.write` / `remove`. */
export interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/** A write waiting to be sent: the newest version of one key, serialised when it was written. */
export interface PendingWrite {
  readonly key: string;
  version: number;
  json: string;
  bytes: number;
  readonly waiters: Waiter[];
}

/** What one round sends: removals first, then writes. */
export interface QueuedRound {
  removes: Map<string, Waiter[]>;
  writes: PendingWrite[];
}

const KEY_REGEXP = new RegExp(KEY_PATTERN);
/** Room for `{"node":…,"records":[…]}` around the records. */
const ENVELOPE_BYTES = 256;
/** Largest serialised record, and largest sum of records in one request. */
export const MAX_RECORDS_BYTES = MAX_BODY_BYTES - ENVELOPE_BYTES;

/**
 * The writes and removals a Replicator has not sent yet, one entry per key. A newer write
 * replaces an older one (its callers wait for the newer: it supersedes theirs); a removal
 * drops a queued write of the key (nothing of a destroyed session needs to survive). A
 * round sends removals before writes, so a key removed and then written again reaches the
 * store in that order.
 */
export class ReplicaQueue {
  #writes = new Map<string, PendingWrite>();
  #removes = new Map<string, Waiter[]>();

  /** Writes plus removals queued. */
  get size(): number {
    return this.#writes.size + this.#removes.size;
  }

  /** Whether any removal is queued. */
  get hasRemoves(): boolean {
    return this.#removes.size > 0;
  }

  /** Whether a write of `key` is queued. */
  hasWrite(key: string): boolean {
    return this.#writes.has(key);
  }

  /** Whether a write or removal of `key` is queued. */
  has(key: string): boolean {
    return this.#writes.has(key) || this.#removes.has(key);
  }

  /** Queues a write, merged with a queued one of the same key (the higher version wins). */
  addWrite(write: PendingWrite, waiter?: Waiter): void {
    const queued = this.#writes.get(write.key);
    if (queued === undefined) {
      this.#writes.set(write.key, write);
    } else if (write.version > queued.version) {
      queued.version = write.version;
      queued.json = write.json;
      queued.bytes = write.bytes;
    }
    if (waiter !== undefined) (queued ?? write).waiters.push(waiter);
  }

  /** Queues a removal; a queued write of the key is dropped and its callers resolved. */
  addRemove(key: string, waiter?: Waiter): void {
    const queued = this.#writes.get(key);
    if (queued !== undefined) {
      this.#writes.delete(key);
      for (const dropped of queued.waiters) dropped.resolve();
    }
    let waiters = this.#removes.get(key);
    if (waiters === undefined) {
      waiters = [];
      this.#removes.set(key, waiters);
    }
    if (waiter !== undefined) waiters.push(waiter);
  }

  /** Takes everything queued, leaving the queue empty. */
  take(): QueuedRound {
    const round = { removes: this.#removes, writes: [...this.#writes.values()] };
    this.#removes = new Map();
    this.#writes = new Map();
    return round;
  }

  /** Puts back a write that failed, unless the key was written again or removed since. */
  restoreWrite(write: PendingWrite): void {
    if (!this.has(write.key)) this.#writes.set(write.key, { ...write, waiters: [] });
  }

  /** Puts back a removal that failed, ahead of any write of the key queued since. */
  restoreRemove(key: string): void {
    if (!this.#removes.has(key)) this.#removes.set(key, []);
  }
}

/** Validates and serialises one record; key and numbers are checked, so they embed as they are. */
export function serialiseWrite(
  key: string,
  version: number,
  data: JsonValue | CompartmentData,
  lastAccessAt: number,
): PendingWrite {
  if (!KEY_REGEXP.test(key)) throw new RangeError(`invalid session key ${JSON.stringify(key.slice(0, 80))}`);
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new RangeError(`session version must be a positive integer, got ${String(version)}`);
  }
  if (!Number.isSafeInteger(lastAccessAt) || lastAccessAt < 0) {
    throw new RangeError(`lastAccessAt must be integer ms, got ${String(lastAccessAt)}`);
  }
  const dataJson: string | undefined = JSON.stringify(data);
  if (dataJson === undefined) throw new RangeError('session data must be JSON');
  const json = `{"key":"${key}","version":${version},"lastAccessAt":${lastAccessAt},"data":${dataJson}}`;
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_RECORDS_BYTES) {
    throw new ReplicaStoreError(`session ${key.slice(0, 6)}… is too large to replicate (${bytes} bytes)`);
  }
  return { key, version, json, bytes, waiters: [] };
}

/** Splits writes into request-sized batches: ≤ `maxRecords` records and ≤ MAX_RECORDS_BYTES each. */
export function* batchWrites(
  writes: Iterable<PendingWrite>,
  maxRecords = MAX_RECORDS_PER_REQUEST,
): Generator<PendingWrite[]> {
  let batch: PendingWrite[] = [];
  let bytes = 0;
  for (const write of writes) {
    if (batch.length === maxRecords || bytes + write.bytes > MAX_RECORDS_BYTES) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(write);
    bytes += write.bytes + 1; // the comma
  }
  if (batch.length > 0) yield batch;
}
