import { ReplicaStoreError } from '../errors.js';
import type {
  ReplicaRecord,
  ReplicaStore,
  ReplicaStoreStats,
  ReplicaWrite,
  WriteOutcome,
} from './replica-store.js';
import { emptyReplicaStats } from './replica-store.js';

/**
 * A ReplicaStore whose implementation is connected later (a RedisReplicaStore connects
 * asynchronously, StickyLb's constructor is synchronous): every call goes to the store set
 * with `attach`; before it (and after `close`), calls reject with ReplicaStoreError.
 */
export class DeferredReplicaStore implements ReplicaStore {
  #store: ReplicaStore | undefined;
  #isClosed = false;

  /** Sets the store every call goes to from now on; it is closed by `close`. */
  attach(store: ReplicaStore): void {
    if (this.#store !== undefined) throw new Error('replica store already attached');
    this.#store = store;
  }

  get epoch(): string {
    return this.#store?.epoch ?? '';
  }

  write(writer: string, records: ReadonlyArray<ReplicaWrite>): Promise<WriteOutcome[]> {
    return this.#with((store) => store.write(writer, records));
  }

  read(key: string): Promise<ReplicaRecord | undefined> {
    return this.#with((store) => store.read(key));
  }

  readMany(keys: readonly string[]): Promise<Array<ReplicaRecord | undefined>> {
    return this.#with((store) => store.readMany(keys));
  }

  touch(writer: string, keys: readonly string[], at?: number): Promise<void> {
    return this.#with((store) => store.touch(writer, keys, at));
  }

  remove(writer: string, keys: readonly string[]): Promise<void> {
    return this.#with((store) => store.remove(writer, keys));
  }

  transfer(key: string, from: string, to: string): Promise<ReplicaRecord | undefined> {
    return this.#with((store) => store.transfer(key, from, to));
  }

  keysOf(owner: string): Promise<string[]> {
    return this.#with((store) => store.keysOf(owner));
  }

  countsByOwner(): Promise<Map<string, number>> {
    return this.#with((store) => store.countsByOwner());
  }

  stats(): ReplicaStoreStats {
    return this.#store?.stats() ?? emptyReplicaStats();
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    await this.#store?.close();
  }

  #with<T>(call: (store: ReplicaStore) => Promise<T>): Promise<T> {
    if (this.#isClosed) return Promise.reject(new ReplicaStoreError('replica store is closed'));
    if (this.#store === undefined) {
      return Promise.reject(new ReplicaStoreError('replica store is not connected yet'));
    }
    return call(this.#store);
  }
}
