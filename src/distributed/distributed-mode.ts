import type { AffinityTable } from '../affinity/index.js';
import type { Logger } from '../log.js';
import type { NodeRegistry } from '../nodes/index.js';
import { RedisReplicaStore, redisConnectionOf, type RedisSettings } from '../replication/index.js';
import { RedisStatus, redisLocationOf, redisUnreachableError, type RedisState } from './redis-status.js';
import { SharedAffinity } from './shared-affinity.js';

/** What the distributed mode needs of the proxy it runs in. */
export interface DistributedModeOptions {
  /** The config's `redis` section: `url`, and `sentinel` or `cluster` when Redis is found through them. */
  redis: RedisSettings;
  idleTimeoutMs: number;
  /** Each Redis command's timeout (`replication.timeout`). */
  commandTimeoutMs: number;
  affinity: AffinityTable;
  registry: NodeRegistry;
  logger: Logger;
  /** Whether this proxy is moving the session right now. */
  isMoving: (key: string) => boolean;
  /** Moves every session off a node that is down (the failover manager's proactive move). */
  moveAll: (nodeId: string) => Promise<unknown>;
  /** Reports a transition to the admin event log. */
  onEvent: (type: string, message: string, detail: Record<string, unknown>) => void;
}

/**
 * `replication.store: redis` in one proxy: the Redis connection (the replica store), the
 * shared affinity (moves told to and learnt from the other proxies), and what happens when
 * Redis goes away and comes back. While it is away the proxy still routes every session it
 * knows (ids carry their routes, moved sessions are cached here); what needs Redis fails
 * loudly: sync writes on the nodes (503) and moves. When it is back: owners re-read (moves
 * published meanwhile were lost), counts re-read, the sessions of nodes that went down
 * meanwhile moved.
 */
export class DistributedMode {
  readonly store: RedisReplicaStore;
  readonly shared: SharedAffinity;
  readonly status: RedisStatus;
  readonly #options: DistributedModeOptions;
  /** The resync running, if any; `#isResyncWanted`: another was asked for meanwhile. */
  #resyncing: Promise<void> | undefined;
  #isResyncWanted = false;

  /** Connects to Redis and subscribes; rejects with ReplicaStoreError naming where Redis is. */
  static async connect(options: DistributedModeOptions): Promise<DistributedMode> {
    const status = new RedisStatus(redisLocationOf(options.redis));
    let store: RedisReplicaStore;
    try {
      store = await RedisReplicaStore.connect({
        ...redisConnectionOf(options.redis),
        idleTimeoutMs: options.idleTimeoutMs,
        commandTimeoutMs: options.commandTimeoutMs,
        logger: options.logger,
      });
    } catch (error) {
      throw redisUnreachableError(options.redis, error);
    }
    const mode = new DistributedMode(store, status, options);
    try {
      await mode.shared.start();
    } catch (error) {
      await store.close();
      throw error;
    }
    return mode;
  }

  private constructor(store: RedisReplicaStore, status: RedisStatus, options: DistributedModeOptions) {
    this.store = store;
    this.status = status;
    this.#options = options;
    this.shared = new SharedAffinity({
      store,
      affinity: options.affinity,
      registry: options.registry,
      logger: options.logger.child({ component: 'shared-affinity' }),
      isMoving: options.isMoving,
    });
    store.on('availability', (isUp, error) => this.#onAvailability(isUp, error));
    // Only the subscriber dropped (the main connection stayed up): moves told meanwhile are lost.
    store.on('resubscribed', () => this.#requestResync());
  }

  /** The `redis` field of `GET /api/state`. */
  state(): RedisState {
    return this.status.snapshot({ ...this.shared.counters });
  }

  /** Stops timers and waiters; the store is closed by its owner (the proxy's replica store). */
  stop(): void {
    this.shared.stop();
  }

  #onAvailability(isUp: boolean, error: Error | undefined): void {
    const { status } = this;
    if (!status.mark(isUp, error)) return;
    if (!isUp) {
      this.#options.onEvent(
        'redis:down',
        `Redis at ${status.url} is unreachable: known sessions are still served; session writes fail (503) and no session can move until it is back`,
        { url: status.url, error: error?.message ?? null },
      );
      return;
    }
    this.#options.onEvent('redis:up', `Redis at ${status.url} is reachable again: resynchronising`, {
      url: status.url,
    });
    this.#requestResync();
  }

  /** The resync running, if any (one asked for meanwhile runs when it ends). */
  get resyncing(): Promise<void> | undefined {
    return this.#resyncing;
  }

  /**
   * Resyncs once both connections are back: a resync before the subscriber is subscribed again
   * could miss a move told between its read and the subscription (the later of 'up' and
   * 'resubscribed' asks again). One at a time; asks during one coalesce into one more after it.
   */
  #requestResync(): void {
    const { store } = this;
    if (!store.isAvailable || !store.isSubscribed) return;
    if (this.#resyncing !== undefined) {
      this.#isResyncWanted = true;
      return;
    }
    this.#resyncing = this.#resync().finally(() => {
      this.#resyncing = undefined;
      if (this.#isResyncWanted) {
        this.#isResyncWanted = false;
        this.#requestResync();
      }
    });
  }

  async #resync(): Promise<void> {
    try {
      const repinned = await this.shared.resync();
      await this.shared.refreshCounts();
      this.#options.onEvent(
        'redis:resync',
        `resynchronised with Redis: ${repinned} moved sessions re-pinned`,
        {
          repinned,
        },
      );
      for (const node of this.#options.registry.all) {
        if (!node.isHealthy) await this.#options.moveAll(node.id);
      }
    } catch (error) {
      // Redis went away again: the next 'up' transition resyncs.
      this.#options.logger.warn({ err: error }, 'resynchronising with Redis failed');
    }
  }
}
