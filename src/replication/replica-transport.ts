import type { Agent } from 'node:http';
import { ReplicaStoreError } from '../errors.js';
import { ReplicaHttpClient } from './replica-http-client.js';
import type { ReplicaRecord, ReplicaStore, ReplicaWrite, WriteOutcome } from './replica-store.js';
import { REPLICA_ROUTES } from './replication-protocol.js';

/** One record as the Replicator sends it: its key and its JSON (`{"key","version","lastAccessAt","data"}`). */
export interface SerialisedRecord {
  readonly key: string;
  readonly json: string;
}

/** What a write returns: the store's epoch, one outcome per record in order. */
export interface TransportWriteResult {
  epoch: unknown;
  outcomes: WriteOutcome[];
}

/** What a read returns: the store's epoch and the replica, if there is one. */
export interface TransportReadResult {
  epoch: unknown;
  record: ReplicaRecord | undefined;
}

/**
 * How a Replicator reaches the replica store: HTTP to the proxy's replication server
 * (`memory` store) or straight to Redis (`redis` store). Every call resolves to the store's
 * epoch (so a store that lost its data is noticed on any call) and rejects with
 * ReplicaStoreError when the store could not be reached.
 */
export interface ReplicaTransport {
  /**
   * Calls reach the store, and are answered, in the order they were made (one connection):
   * a Replicator may then keep several sync rounds in flight without reordering them.
   */
  readonly isOrdered?: boolean;
  write(node: string, records: readonly SerialisedRecord[]): Promise<TransportWriteResult>;
  touch(node: string, keys: readonly string[]): Promise<{ epoch: unknown }>;
  remove(node: string, keys: readonly string[]): Promise<{ epoch: unknown }>;
  /** The live replica of `key`, whoever owns it (`record` undefined: none). */
  read(node: string, key: string): Promise<TransportReadResult>;
  /** The store's epoch now. */
  epoch(): Promise<unknown>;
  /** Releases what the transport itself opened (not a store it was given). */
  close(): void;
}

/** Options of an HttpReplicaTransport. */
export interface HttpReplicaTransportOptions {
  /** Base URL of the replication server, `http://host:port`. */
  endpoint: string;
  /** `replication.secret`. */
  secret: string;
  agent?: Agent | undefined;
  /** Time one request may take. */
  timeoutMs: number;
}

/** The `memory` store's transport: JSON over HTTP to the proxy's replication server. */
export class HttpReplicaTransport implements ReplicaTransport {
  readonly #client: ReplicaHttpClient;

  constructor(options: HttpReplicaTransportOptions) {
    this.#client = new ReplicaHttpClient(options);
  }

  async write(node: string, records: readonly SerialisedRecord[]): Promise<TransportWriteResult> {
    const body = `{"node":"${node}","records":[${records.map((record) => record.json).join(',')}]}`;
    const answer = (await this.#client.post(REPLICA_ROUTES.write, body)) as {
      epoch?: unknown;
      outcomes?: unknown;
    };
    if (!Array.isArray(answer.outcomes) || answer.outcomes.length !== records.length) {
      throw new ReplicaStoreError('replica store answered a write without one outcome per record');
    }
    return { epoch: answer.epoch, outcomes: answer.outcomes as WriteOutcome[] };
  }

  touch(node: string, keys: readonly string[]): Promise<{ epoch: unknown }> {
    return this.#postKeys(REPLICA_ROUTES.touch, node, keys);
  }

  remove(node: string, keys: readonly string[]): Promise<{ epoch: unknown }> {
    return this.#postKeys(REPLICA_ROUTES.remove, node, keys);
  }

  async read(node: string, key: string): Promise<TransportReadResult> {
    const answer = (await this.#client.post(REPLICA_ROUTES.read, JSON.stringify({ node, key }))) as {
      epoch?: unknown;
      record?: unknown;
    };
    return { epoch: answer.epoch, record: checkedRecord(answer.record) };
  }

  async epoch(): Promise<unknown> {
    const answer = (await this.#client.get(REPLICA_ROUTES.epoch)) as { epoch?: unknown };
    return answer.epoch;
  }

  close(): void {
    this.#client.close();
  }

  async #postKeys(route: string, node: string, keys: readonly string[]): Promise<{ epoch: unknown }> {
    const answer = (await this.#client.post(route, JSON.stringify({ node, keys }))) as { epoch?: unknown };
    return { epoch: answer.epoch };
  }
}

/**
 * A transport straight to a ReplicaStore in this process, e.g. a RedisReplicaStore shared
 * by every proxy and node: nodes write to Redis with no proxy hop. The store is not closed
 * by `close()`: whoever created it closes it.
 */
export class StoreReplicaTransport implements ReplicaTransport {
  readonly #store: ReplicaStore;

  constructor(store: ReplicaStore) {
    this.#store = store;
  }

  async write(node: string, records: readonly SerialisedRecord[]): Promise<TransportWriteResult> {
    const writes = records.map((record) => JSON.parse(record.json) as ReplicaWrite);
    const outcomes = await this.#call(() => this.#store.write(node, writes));
    return { epoch: this.#store.epoch, outcomes };
  }

  async touch(node: string, keys: readonly string[]): Promise<{ epoch: unknown }> {
    await this.#call(() => this.#store.touch(node, keys));
    return { epoch: this.#store.epoch };
  }

  async remove(node: string, keys: readonly string[]): Promise<{ epoch: unknown }> {
    await this.#call(() => this.#store.remove(node, keys));
    return { epoch: this.#store.epoch };
  }

  async read(_node: string, key: string): Promise<TransportReadResult> {
    const record = await this.#call(() => this.#store.read(key));
    return { epoch: this.#store.epoch, record };
  }

  epoch(): Promise<unknown> {
    return Promise.resolve(this.#store.epoch);
  }

  close(): void {
    // The store belongs to the caller.
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw error instanceof ReplicaStoreError
        ? error
        : new ReplicaStoreError(`replica store failed: ${String(error)}`, { cause: error });
    }
  }
}

/**
 * A replica as a read answered it (JSON `null`: none), checked as far as a node relies on it:
 * anything else is an answer the store should never give, refused like an unreadable one.
 */
export function checkedRecord(value: unknown): ReplicaRecord | undefined {
  if (value === null || value === undefined) return undefined;
  const record = value as Partial<ReplicaRecord>;
  if (
    typeof record.key !== 'string' ||
    typeof record.owner !== 'string' ||
    !Number.isSafeInteger(record.version) ||
    !Number.isSafeInteger(record.lastAccessAt) ||
    record.data === undefined
  ) {
    throw new ReplicaStoreError('replica store answered a read with a malformed record');
  }
  return record as ReplicaRecord;
}
