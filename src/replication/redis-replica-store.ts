import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Cluster, type Redis } from 'ioredis';
import { backoffMs } from '../backoff.js';
import { ReplicaStoreError } from '../errors.js';
import { createSilentLogger, type Logger } from '../log.js';
import type { JsonValue } from '../session/index.js';
import type {
  ReplicaRecord,
  ReplicaStore,
  ReplicaStoreStats,
  ReplicaWrite,
  WriteOutcome,
} from './replica-store.js';
import { assertReplicaWrites, emptyReplicaStats } from './replica-store.js';
import { createRedisClient, type Client, type Pipeline, type RedisConnection } from './redis-connection.js';

export type { RedisConnection };

/** Options of a RedisReplicaStore; durations in milliseconds. */
export type RedisReplicaStoreOptions = RedisConnection & {
  /** A replica not written or touched by its owner for this long expires (`session.idleTimeout`). */
  idleTimeoutMs: number;
  /**
   * Prefix of every key (default `stickylb:`; `{stickylb}:` with a Cluster). With a Cluster it
   * must hold a `{hash tag}`: the scripts touch a session and its owner's index together, so
   * all keys must share one slot (Cluster then gives failover, not sharding, to this store).
   */
  keyPrefix?: string;
  /** Time one Redis command may take before it fails (default 2000: below the nodes' 5 s). */
  commandTimeoutMs?: number;
  /** How often the epoch key is checked, so a flushed Redis is noticed without a reconnect (default 1000). */
  epochCheckIntervalMs?: number;
  /**
   * Replicas of the Redis master that must hold every write, removal and transfer before it
   * counts as done (`WAIT`, for at most half the command timeout; default 0). Redis replicates
   * asynchronously: without it, a Sentinel failover can lose acknowledged writes and undo
   * transfers (a fenced node could write again). Not with a Cluster.
   */
  minReplicas?: number;
  logger?: Logger;
};

/** Records per write script: a slice of a batch, so Redis is never blocked for long (~2-4 ms). */
const RECORDS_PER_SCRIPT = 250;
/** First wait before a re-subscribe that failed on a live connection is tried again, then doubled up to the max. */
const RESUBSCRIBE_RETRY_MS = 200;
const RESUBSCRIBE_RETRY_MAX_MS = 5_000;
/** Expired index members a write script may prune per record it writes. */
const PRUNE_PER_RECORD = 2;
/** Keys per touch or remove script. */
const KEYS_PER_SCRIPT = 1000;
/** Keys verified per `keysOf` step (one ZSCAN page, one script). */
const KEYS_OF_PAGE = 1000;
/** `stats().records` is recounted when older than this, or after a local change. */
const RECORDS_MAX_AGE_MS = 1000;
/**
 * The `redis` replica store: the ReplicaStore contract on Redis (standalone, Sentinel or
 * Cluster through ioredis), shared by every proxy of a distributed deployment.
 *
 * Every mutation is a Lua script (write, touch, remove: one per slice of a batch; transfer:
 * one per key), so fencing, the version check and the owner index change in one atomic
 * step; a batch is one pipeline (one round trip). Replicas expire in Redis itself (PEXPIREAT, restarted by the owner's
 * writes and touches, not by reads). Each owner's keys are a sorted set scored by expiry, so
 * `keysOf` and counting never walk all of Redis, and expired members are pruned lazily.
 *
 * The epoch is a key in Redis, not a per-instance id: proxies sharing the store share it,
 * and a Redis that lost its data (restart without persistence, FLUSHALL) has lost the key,
 * so the next check creates a new one and every node re-seeds.
 *
 * Failures reject with ReplicaStoreError at once: commands are not queued while Redis is
 * unreachable (ioredis reconnects in the background), so a sync write fails loudly (503)
 * instead of hanging.
 */
export class RedisReplicaStore
  extends EventEmitter<{
    availability: [isAvailable: boolean, error: Error | undefined];
    /** A subscriber connection that dropped is subscribed again: messages of the gap were lost. */
    resubscribed: [];
  }>
  implements ReplicaStore
{
  readonly #client: Client;
  readonly #keyPrefix: string;
  /** Connections in subscriber mode (`subscribe`), closed with the store. */
  readonly #subscribers: Array<Redis | Cluster> = [];
  /** Subscriber connections that dropped and are not subscribed again yet. */
  readonly #droppedSubscribers = new Set<Redis | Cluster>();
  /** Re-subscribes waiting to be tried again, one per subscriber (see `#resubscribe`). */
  readonly #retryTimers = new Map<Redis | Cluster, NodeJS.Timeout>();
  readonly #idleTimeoutMs: number;
  readonly #logger: Logger;
  readonly #epochKey: string;
  readonly #ownersKey: string;
  readonly #sessionPrefix: string;
  readonly #indexPrefix: string;
  readonly #epochCheckIntervalMs: number;
  readonly #minReplicas: number;
  readonly #isCluster: boolean;
  readonly #waitTimeoutMs: number;
  readonly #instanceId = randomBytes(9).toString('base64url');
  #transferSeq = 0;
  #epoch = '';
  #epochTimer: NodeJS.Timeout | undefined;
  #epochCheck: Promise<void> | undefined;
  #isClosed = false;
  #isFailing = false;
  #records = 0;
  #recordsCountedAt = -Infinity;
  #recordsDirty = true;
  #recordsCount: Promise<void> | undefined;
  readonly #counts = emptyReplicaStats();

  /** Connects, reads (or creates) the epoch; rejects with ReplicaStoreError if Redis cannot be reached. */
  static async connect(options: RedisReplicaStoreOptions): Promise<RedisReplicaStore> {
    const store = new RedisReplicaStore(options);
    try {
      await store.#open();
    } catch (error) {
      await store.close();
      throw wrap('connect', error);
    }
    return store;
  }

  private constructor(options: RedisReplicaStoreOptions) {
    super();
    if (!Number.isSafeInteger(options.idleTimeoutMs) || options.idleTimeoutMs < 1) {
      throw new RangeError(`idleTimeoutMs must be a positive integer, got ${String(options.idleTimeoutMs)}`);
    }
    const isCluster = 'cluster' in options;
    const prefix = options.keyPrefix ?? (isCluster ? '{stickylb}:' : 'stickylb:');
    if (isCluster && !/\{[^}]+\}/.test(prefix)) {
      throw new RangeError(`keyPrefix ${JSON.stringify(prefix)} needs a {hash tag} with a Redis Cluster`);
    }
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#keyPrefix = prefix;
    this.#logger = (options.logger ?? createSilentLogger()).child({ component: 'redis-replica-store' });
    this.#epochKey = `${prefix}epoch`;
    this.#ownersKey = `${prefix}owners`;
    this.#sessionPrefix = `${prefix}s:`;
    this.#indexPrefix = `${prefix}o:`;
    this.#epochCheckIntervalMs = options.epochCheckIntervalMs ?? 1000;
    this.#minReplicas = options.minReplicas ?? 0;
    this.#isCluster = isCluster;
    if (!Number.isSafeInteger(this.#minReplicas) || this.#minReplicas < 0) {
      throw new RangeError(`minReplicas must be a non-negative integer, got ${String(options.minReplicas)}`);
    }
    if (isCluster && this.#minReplicas > 0)
      throw new RangeError('minReplicas is not supported with a Cluster');
    const commandTimeoutMs = options.commandTimeoutMs ?? 2000;
    this.#waitTimeoutMs = Math.max(1, Math.floor(commandTimeoutMs / 2));

    const client = createRedisClient(options, commandTimeoutMs);
    // Without a listener ioredis prints every connection error; one log line per outage instead.
    client.on('error', (error: Error) => this.#noteFailure(error));
    this.#client = client;
  }

  /**
   * The epoch of the data in Redis (shared by every proxy on it). Re-read on every reconnect
   * and every `epochCheckIntervalMs`; a Redis that lost its data gets a new one.
   */
  get epoch(): string {
    return this.#epoch;
  }

  async #open(): Promise<void> {
    await this.#client.connect();
    await this.#checkEpoch();
    this.#client.on('ready', () => {
      this.#noteSuccess();
      void this.#checkEpoch().catch((error: unknown) => this.#noteFailure(error));
    });
    this.#epochTimer = setInterval(
      () => void this.#checkEpoch().catch((error: unknown) => this.#noteFailure(error)),
      this.#epochCheckIntervalMs,
    );
    this.#epochTimer.unref();
  }

  /** Reads the epoch key, creating it if Redis lost it. */
  #checkEpoch(): Promise<void> {
    this.#epochCheck ??= (async () => {
      try {
        const candidate = randomBytes(12).toString('base64url');
        const epoch = String(await this.#client.slbEpoch(this.#epochKey, candidate));
        // An answer from the store's master: it ends an outage that a failed command started
        // on a connection that stayed up (no 'ready' will come), even when nothing else runs.
        this.#noteSuccess();
        if (epoch !== this.#epoch) {
          if (this.#epoch !== '') {
            this.#logger.warn({ previous: this.#epoch, epoch }, 'redis lost the replicas: new epoch');
          }
          this.#epoch = epoch;
          this.#recordsDirty = true;
        }
      } finally {
        this.#epochCheck = undefined;
      }
    })();
    return this.#epochCheck;
  }

  async write(writer: string, records: ReadonlyArray<ReplicaWrite>): Promise<WriteOutcome[]> {
    this.#assertOpen();
    this.#counts.writeCalls++;
    // Validated up front: a bad record must not leave half a batch applied.
    assertReplicaWrites(records);
    if (records.length === 0) return [];
    const now = Date.now();
    const pipeline = this.#pipeline();
    const index = this.#indexKey(writer);
    for (let start = 0; start < records.length; start += RECORDS_PER_SCRIPT) {
      const slice = records.slice(start, start + RECORDS_PER_SCRIPT);
      const keys: string[] = [index, this.#ownersKey];
      const args: Array<string | number> = [writer, slice.length * PRUNE_PER_RECORD];
      for (const record of slice) {
        // A future access time counts as now; the TTL runs from the access, as in the memory store.
        const at = Math.min(record.lastAccessAt, now);
        keys.push(this.#sessionKey(record.key));
        args.push(
          record.key,
          String(record.version),
          JSON.stringify(record.data) ?? 'null',
          String(at),
          Math.floor(at + this.#idleTimeoutMs - now),
        );
      }
      pipeline.slbWrite(keys.length, ...keys, ...args);
    }
    const replies = await this.#exec('write', pipeline, true);
    const counts = this.#counts;
    const outcomes: WriteOutcome[] = [];
    for (const reply of replies) {
      const slice = reply as Array<WriteOutcome | number>;
      counts.expired += Number(slice.pop());
      for (const outcome of slice as WriteOutcome[]) {
        if (outcome === 'ok') {
          counts.writes++;
          this.#recordsDirty = true;
        } else if (outcome === 'stale') counts.staleRejected++;
        else counts.notOwnerRejected++;
        outcomes.push(outcome);
      }
    }
    return outcomes;
  }

  async read(key: string): Promise<ReplicaRecord | undefined> {
    this.#assertOpen();
    let reply: Array<string | null>;
    try {
      reply = await this.#client.hmget(this.#sessionKey(key), 'owner', 'version', 'data', 'lastAccessAt');
    } catch (error) {
      throw this.#fail('read', error);
    }
    this.#noteSuccess();
    const [owner, version, data, lastAccessAt] = reply;
    return owner === null || owner === undefined
      ? undefined
      : toRecord(key, owner, version, data, lastAccessAt);
  }

  async readMany(keys: readonly string[]): Promise<Array<ReplicaRecord | undefined>> {
    this.#assertOpen();
    if (keys.length === 0) return [];
    const pipeline = this.#pipeline();
    for (const key of keys) pipeline.hmget(this.#sessionKey(key), 'owner', 'version', 'data', 'lastAccessAt');
    const replies = await this.#exec('read', pipeline);
    return replies.map((reply, i) => {
      const [owner, version, data, lastAccessAt] = reply as Array<string | null>;
      if (owner === null || owner === undefined) return undefined;
      return toRecord(keys[i] as string, owner, version, data, lastAccessAt);
    });
  }

  async touch(writer: string, keys: readonly string[], at?: number): Promise<void> {
    this.#assertOpen();
    this.#counts.touchCalls++;
    if (keys.length === 0) return;
    // The store's clock: `at` may come from a node whose clock runs ahead.
    const now = Date.now();
    const accessAt = String(at === undefined ? now : Math.min(at, now));
    const pipeline = this.#pipeline();
    this.#perSlice(keys, (hashes, slice) =>
      pipeline.slbTouch(
        1 + hashes.length,
        this.#indexKey(writer),
        ...hashes,
        writer,
        accessAt,
        this.#idleTimeoutMs,
        ...slice,
      ),
    );
    const replies = await this.#exec('touch', pipeline);
    for (const touched of replies) this.#counts.touches += Number(touched);
  }

  async remove(writer: string, keys: readonly string[]): Promise<void> {
    this.#assertOpen();
    if (keys.length === 0) return;
    const pipeline = this.#pipeline();
    this.#perSlice(keys, (hashes, slice) =>
      pipeline.slbRemove(1 + hashes.length, this.#indexKey(writer), ...hashes, writer, ...slice),
    );
    const replies = await this.#exec('remove', pipeline, true);
    for (const removed of replies) this.#counts.removes += Number(removed);
    this.#recordsDirty = true;
  }

  /** Calls `add` per slice of ≤ KEYS_PER_SCRIPT keys, with their session hash names. */
  #perSlice(keys: readonly string[], add: (hashes: string[], slice: readonly string[]) => void): void {
    for (let start = 0; start < keys.length; start += KEYS_PER_SCRIPT) {
      const slice = keys.slice(start, start + KEYS_PER_SCRIPT);
      add(
        slice.map((key) => this.#sessionKey(key)),
        slice,
      );
    }
  }

  async transfer(key: string, from: string, to: string): Promise<ReplicaRecord | undefined> {
    this.#assertOpen();
    // Unique per call across every store instance (see TRANSFER_SCRIPT); no crypto per call.
    const token = `${this.#instanceId}.${++this.#transferSeq}`;
    let reply: unknown;
    try {
      reply = await this.#client.slbTransfer(
        this.#sessionKey(key),
        this.#indexKey(from),
        this.#indexKey(to),
        this.#ownersKey,
        key,
        from,
        to,
        token,
      );
      // A separate command (not a pipeline): a single command is resent after a dropped
      // connection, and the token makes that safe; WAIT covers it all the same.
      if (reply !== null && this.#minReplicas > 0) {
        this.#assertReplicated('transfer', await this.#client.wait(this.#minReplicas, this.#waitTimeoutMs));
      }
    } catch (error) {
      throw this.#fail('transfer', error);
    }
    this.#noteSuccess();
    if (reply === null || reply === undefined) return undefined;
    const [version, data, lastAccessAt] = reply as Array<string | null>;
    this.#counts.transfers++;
    this.#recordsDirty = true;
    return toRecord(key, to, version, data, lastAccessAt);
  }

  async keysOf(owner: string): Promise<string[]> {
    this.#assertOpen();
    const index = this.#indexKey(owner);
    const found = new Set<string>();
    let cursor = '0';
    try {
      do {
        const [next, flat] = await this.#client.zscan(index, cursor, 'COUNT', KEYS_OF_PAGE);
        cursor = next;
        // ZSCAN answers member, score, member, score…, and may repeat a member across pages.
        const page: string[] = [];
        for (let i = 0; i < flat.length; i += 2) {
          const key = flat[i] as string;
          if (!found.has(key)) page.push(key);
        }
        if (page.length === 0) continue;
        const hashes = page.map((key) => this.#sessionKey(key));
        const [owned, pruned] = (await this.#client.slbOwned(
          1 + page.length,
          index,
          ...hashes,
          owner,
          ...page,
        )) as [string[], number];
        for (const key of owned) found.add(key);
        this.#counts.expired += Number(pruned);
      } while (cursor !== '0');
    } catch (error) {
      throw this.#fail('keysOf', error);
    }
    this.#noteSuccess();
    return [...found];
  }

  /**
   * Live replicas per owner, counted in Redis by expiry score (no hash is read: one ZCOUNT
   * per owner). Cheap enough for the dashboard's replicas-per-node, whatever the total.
   */
  async countsByOwner(): Promise<Map<string, number>> {
    this.#assertOpen();
    let flat: unknown;
    try {
      flat = await this.#client.slbCounts(this.#ownersKey, this.#indexPrefix);
    } catch (error) {
      throw this.#fail('count', error);
    }
    this.#noteSuccess();
    const counts = new Map<string, number>();
    const pairs = flat as Array<string | number>;
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const count = Number(pairs[i + 1]);
      if (count > 0) counts.set(String(pairs[i]), count);
    }
    return counts;
  }

  /**
   * Counters of this instance since it was created, except `records`: the live replicas in
   * Redis (of every proxy), counted in the background when this answer is over 1 s old or
   * this instance changed something since. So it lags by one count: it is for dashboards.
   * `expired` counts expired replicas this instance found in owner indexes and dropped
   * (Redis expires the replicas themselves without telling anyone).
   */
  stats(): ReplicaStoreStats {
    this.#recountRecords();
    return { ...this.#counts, records: this.#records };
  }

  #recountRecords(): void {
    if (this.#isClosed || this.#recordsCount !== undefined) return;
    if (!this.#recordsDirty && Date.now() - this.#recordsCountedAt < RECORDS_MAX_AGE_MS) return;
    this.#recordsDirty = false;
    this.#recordsCountedAt = Date.now();
    this.#recordsCount = this.countsByOwner()
      .then(
        (counts) => {
          let total = 0;
          for (const count of counts.values()) total += count;
          this.#records = total;
        },
        () => {
          // Logged once per outage by #fail; the last count stands, a later call retries.
          this.#recordsDirty = true;
        },
      )
      .finally(() => {
        this.#recordsCount = undefined;
      });
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    clearInterval(this.#epochTimer);
    for (const timer of this.#retryTimers.values()) clearTimeout(timer);
    this.#retryTimers.clear();
    for (const subscriber of this.#subscribers) subscriber.disconnect();
    try {
      await this.#client.quit();
    } catch {
      // Not connected: nothing to say goodbye to.
    } finally {
      this.#client.disconnect();
    }
  }

  #pipeline(): Pipeline {
    return this.#client.pipeline() as Pipeline;
  }

  /**
   * Runs a pipeline; any failed command fails the call (earlier records of a write stay
   * applied). `durable`: then waits for `minReplicas` replicas (one more command, same trip).
   */
  async #exec(op: string, pipeline: Pipeline, durable = false): Promise<unknown[]> {
    const waits = durable && this.#minReplicas > 0;
    if (waits) pipeline.wait(this.#minReplicas, this.#waitTimeoutMs);
    let results: Array<[error: Error | null, result: unknown]> | null;
    try {
      results = await pipeline.exec();
    } catch (error) {
      throw this.#fail(op, error);
    }
    if (results === null) throw this.#fail(op, new Error('pipeline discarded'));
    const replies: unknown[] = [];
    for (const [error, reply] of results) {
      if (error !== null) throw this.#fail(op, error);
      replies.push(reply);
    }
    if (waits) this.#assertReplicated(op, replies.pop());
    this.#noteSuccess();
    return replies;
  }

  /** Fails the call when fewer replicas than `minReplicas` acknowledged it. */
  #assertReplicated(op: string, acknowledged: unknown): void {
    if (Number(acknowledged) >= this.#minReplicas) return;
    throw this.#fail(
      op,
      new Error(`only ${String(acknowledged)} of ${this.#minReplicas} Redis replicas acknowledged in time`),
    );
  }

  #sessionKey(key: string): string {
    return this.#sessionPrefix + key;
  }

  #indexKey(owner: string): string {
    return this.#indexPrefix + owner;
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new ReplicaStoreError('replica store is closed');
  }

  #fail(op: string, error: unknown): ReplicaStoreError {
    if (this.#isClosed && !(error instanceof ReplicaStoreError)) {
      return new ReplicaStoreError('replica store is closed', { cause: error });
    }
    this.#noteFailure(error);
    return wrap(op, error);
  }

  /**
   * Logs the first failure of an outage and emits `availability` false; the 'ready' event or a
   * success ends it (logged and emitted once per transition, never per failed command).
   */
  #noteFailure(error: unknown): void {
    if (this.#isFailing || this.#isClosed) return;
    this.#isFailing = true;
    this.#logger.warn({ err: error }, 'redis replica store unavailable');
    this.emit('availability', false, error instanceof Error ? error : new Error(String(error)));
  }

  #noteSuccess(): void {
    if (!this.#isFailing || this.#isClosed) return;
    this.#isFailing = false;
    this.#logger.info('redis replica store available again');
    this.emit('availability', true, undefined);
  }

  /** False from the first failed command (or dropped connection) of an outage until Redis answers again. */
  get isAvailable(): boolean {
    return !this.#isFailing;
  }

  /** False while a subscriber connection that dropped is not subscribed again (see `subscribe`). */
  get isSubscribed(): boolean {
    return this.#droppedSubscribers.size === 0;
  }

  /**
   * Publishes `message` on `channel` (prefixed like every key) to every subscriber of every
   * process sharing this Redis. Rejects with ReplicaStoreError when Redis cannot be reached.
   */
  async publish(channel: string, message: string): Promise<void> {
    this.#assertOpen();
    try {
      await this.#client.publish(this.#keyPrefix + channel, message);
    } catch (error) {
      throw this.#fail('publish', error);
    }
    // Any master of a Cluster answers PUBLISH (and broadcasts it), so there it proves nothing
    // about the master holding the store's slot: an outage would flap down/up per publish.
    if (!this.#isCluster) this.#noteSuccess();
  }

  /**
   * Calls `listener` with every message published on `channel`, on a connection of its own
   * (a subscribed connection can send nothing else). It can drop alone, while the main
   * connection stays up: messages published until it is subscribed again are lost, so it emits
   * `resubscribed` then (callers resynchronise on it, as on `availability`).
   */
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    this.#assertOpen();
    const client: Redis | Cluster = this.#client;
    const subscriber = client instanceof Cluster ? client.duplicate() : client.duplicate();
    this.#subscribers.push(subscriber);
    // Errors are reported once per outage by the main connection; without a listener ioredis prints each.
    subscriber.on('error', () => undefined);
    const name = this.#keyPrefix + channel;
    subscriber.on('message', (from: string, message: string) => {
      if (from === name) listener(message);
    });
    try {
      if (subscriber.status === 'wait') await subscriber.connect();
      await subscriber.subscribe(name);
    } catch (error) {
      throw this.#fail('subscribe', error);
    }
    subscriber.on('close', () => {
      if (!this.#isClosed) this.#droppedSubscribers.add(subscriber);
    });
    subscriber.on('ready', () => {
      if (this.#droppedSubscribers.has(subscriber)) void this.#resubscribe(subscriber, name);
    });
  }

  /**
   * Subscribes a reconnected subscriber and emits `resubscribed` once Redis confirmed it.
   * ioredis resubscribes on its own, but only after emitting 'ready': a resync started on
   * 'ready' could read the owners before the subscription is back and miss a move published
   * in between. Replies on a connection come in order, so this reply means it is back.
   */
  async #resubscribe(subscriber: Redis | Cluster, name: string, attempt = 0): Promise<void> {
    // One try at a time per subscriber: a reconnect's try replaces a retry still waiting.
    clearTimeout(this.#retryTimers.get(subscriber));
    this.#retryTimers.delete(subscriber);
    try {
      await subscriber.subscribe(name);
    } catch {
      // Dropped again: its next 'ready' tries again. But a command that timed out on a
      // connection that stayed up (a busy Redis) brings no 'ready': retry, or this proxy would
      // never resynchronise again.
      if (this.#isClosed || subscriber.status !== 'ready' || this.#retryTimers.has(subscriber)) return;
      const timer = setTimeout(
        () => {
          this.#retryTimers.delete(subscriber);
          if (this.#droppedSubscribers.has(subscriber)) void this.#resubscribe(subscriber, name, attempt + 1);
        },
        backoffMs(attempt + 2, RESUBSCRIBE_RETRY_MS, RESUBSCRIBE_RETRY_MAX_MS),
      );
      timer.unref();
      this.#retryTimers.set(subscriber, timer);
      return;
    }
    if (this.#isClosed || !this.#droppedSubscribers.delete(subscriber)) return;
    if (this.#droppedSubscribers.size === 0) this.emit('resubscribed');
  }
}

function wrap(op: string, error: unknown): ReplicaStoreError {
  if (error instanceof ReplicaStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ReplicaStoreError(`redis replica store: ${op} failed: ${message}`, { cause: error });
}

function toRecord(
  key: string,
  owner: string,
  version: string | null | undefined,
  data: string | null | undefined,
  lastAccessAt: string | null | undefined,
): ReplicaRecord {
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(data ?? 'null') as JsonValue;
  } catch (error) {
    throw new ReplicaStoreError(`redis replica store: replica ${key.slice(0, 6)}… is corrupt`, {
      cause: error,
    });
  }
  return { key, version: Number(version), owner, data: parsed, lastAccessAt: Number(lastAccessAt) };
}
