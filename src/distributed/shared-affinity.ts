import { randomBytes } from 'node:crypto';
import type { AffinityTable } from '../affinity/index.js';
import type { Logger } from '../log.js';
import type { NodeRegistry } from '../nodes/index.js';
import type { RedisReplicaStore } from '../replication/index.js';

/** The pub/sub channel of moves (prefixed like every key of the store). */
const MOVED_CHANNEL = 'moved';
/**
 * How long a proxy that lost a transfer waits for the winner to report the move done before
 * it installs the replica itself: longer than one install request takes on a healthy node.
 */
const PEER_MOVE_WAIT_MS = 3000;
/** Sessions read per round trip when resynchronising after an outage. */
const RESYNC_PAGE = 500;
/**
 * Moves whose publish failed, kept to be published again (newest per session): enough for
 * the moves of an evacuation that overlapped a short outage, at ~100 bytes each.
 */
const MAX_UNSENT_MOVES = 50_000;
/** How often per-node session counts are read back from Redis's owner indexes. */
const COUNTS_INTERVAL_MS = 1000;

/** What one proxy tells the others: sessions it moved, and where to. */
interface MovedMessage {
  from: string;
  moves: Array<[key: string, nodeId: string]>;
}

interface Waiter {
  nodeId: string;
  settle: (isDone: boolean) => void;
}

/**
 * The affinity table shared by every proxy on one Redis (distributed mode), without a
 * cluster protocol. A healthy session needs nothing shared: its id carries its route. What
 * the id cannot say — where a failover moved a session — is the replica's `owner` in Redis
 * (the truth, changed only by the atomic transfer) and is cached by every proxy: the proxy
 * that moved sessions publishes them once their state is installed, and every other proxy
 * re-pins them in its own table, so the hot path never asks Redis. A proxy that missed a
 * message (Redis was unreachable) still finds the truth: on the rare path a transfer from
 * the id's down node fails and the failover manager reads the owner instead, and after an
 * outage `resync` re-reads the owner of every session this proxy knows.
 */
export class SharedAffinity {
  readonly #store: RedisReplicaStore;
  readonly #affinity: AffinityTable;
  readonly #registry: NodeRegistry;
  readonly #logger: Logger;
  readonly #isMoving: (key: string) => boolean;
  readonly #peerMoveWaitMs: number;
  /** Tells this proxy's own messages apart (it receives what it publishes). */
  readonly #instanceId = randomBytes(9).toString('base64url');
  readonly #waiters = new Map<string, Waiter[]>();
  /** Moves whose publish failed, by session (the newest wins), oldest first; see `resync`. */
  readonly #unsent = new Map<string, string>();
  #countsTimer: NodeJS.Timeout | undefined;
  #counting: Promise<void> | undefined;
  /**
   * Sessions published, adopted from other proxies, publishes that failed (one per failed
   * message: its moves are kept and published again by the next `resync`), and re-pins.
   */
  readonly counters = { published: 0, adopted: 0, publishFailures: 0, resynced: 0 };

  constructor(options: {
    store: RedisReplicaStore;
    affinity: AffinityTable;
    registry: NodeRegistry;
    logger: Logger;
    /** Whether this proxy is moving the session right now (a resync must not re-pin it mid-move). */
    isMoving: (key: string) => boolean;
    /** How long `awaitMove` waits for another proxy's message (default 3000). */
    peerMoveWaitMs?: number;
  }) {
    this.#store = options.store;
    this.#affinity = options.affinity;
    this.#registry = options.registry;
    this.#logger = options.logger;
    this.#isMoving = options.isMoving;
    this.#peerMoveWaitMs = options.peerMoveWaitMs ?? PEER_MOVE_WAIT_MS;
  }

  /** Subscribes to other proxies' moves and starts reading per-node counts from Redis. */
  async start(): Promise<void> {
    await this.#store.subscribe(MOVED_CHANNEL, (message) => this.#onMessage(message));
    this.#countsTimer = setInterval(() => void this.refreshCounts(), COUNTS_INTERVAL_MS);
    this.#countsTimer.unref();
    await this.refreshCounts();
  }

  stop(): void {
    clearInterval(this.#countsTimer);
    for (const [key] of this.#waiters) this.#settle(key, undefined);
  }

  /**
   * Tells every other proxy about sessions this one moved (their state is installed). A move
   * whose publish fails is kept and published again by the next `resync`: a proxy that saw no
   * outage does not resync, and would route the session to its old node forever.
   */
  publish(moves: ReadonlyArray<[key: string, nodeId: string]>): void {
    const message: MovedMessage = { from: this.#instanceId, moves: [...moves] };
    this.#store.publish(MOVED_CHANNEL, JSON.stringify(message)).then(
      () => {
        this.counters.published += moves.length;
      },
      () => {
        // Redis is unreachable (logged once by the store); it is back when `resync` runs.
        this.counters.publishFailures++;
        for (const [key, nodeId] of moves) this.#keepUnsent(key, nodeId);
      },
    );
  }

  /** Keeps a move to publish again: the newest per session, the oldest dropped past the bound. */
  #keepUnsent(key: string, nodeId: string): void {
    this.#unsent.delete(key);
    this.#unsent.set(key, nodeId);
    if (this.#unsent.size > MAX_UNSENT_MOVES) {
      const oldest = this.#unsent.keys().next();
      if (oldest.done !== true) this.#unsent.delete(oldest.value);
    }
  }

  /**
   * Publishes again the moves whose publish failed, those still true in Redis (a later move,
   * by this proxy or another, makes a kept one stale: it is dropped, not sent). A page stays
   * kept until it is sent, so a failure here leaves it for the next resync.
   */
  async #publishUnsent(): Promise<void> {
    const unsent = [...this.#unsent];
    for (let start = 0; start < unsent.length; start += RESYNC_PAGE) {
      const page = unsent.slice(start, start + RESYNC_PAGE);
      const records = await this.#store.readMany(page.map(([key]) => key));
      const moves = page.filter(([, nodeId], i) => records[i]?.owner === nodeId);
      if (moves.length > 0) {
        const message: MovedMessage = { from: this.#instanceId, moves };
        await this.#store.publish(MOVED_CHANNEL, JSON.stringify(message));
        this.counters.published += moves.length;
      }
      // Unless the session failed to publish again meanwhile (a newer move): that one stays.
      for (const [key, nodeId] of page) if (this.#unsent.get(key) === nodeId) this.#unsent.delete(key);
    }
  }

  /**
   * Another proxy won the transfer of `key` to `nodeId`: resolves true once it reports the
   * move done (at once if this proxy knows already), false after `peerMoveWaitMs`.
   */
  awaitMove(key: string, nodeId: string): Promise<boolean> {
    if (this.#affinity.nodeOf(key) === nodeId) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const waiters = this.#waiters.get(key);
        const rest = waiters?.filter((waiter) => waiter !== entry) ?? [];
        if (rest.length > 0) this.#waiters.set(key, rest);
        else this.#waiters.delete(key);
        resolve(false);
      }, this.#peerMoveWaitMs);
      timer.unref();
      const entry: Waiter = {
        nodeId,
        settle: (isDone) => {
          clearTimeout(timer);
          resolve(isDone);
        },
      };
      const waiters = this.#waiters.get(key);
      if (waiters === undefined) this.#waiters.set(key, [entry]);
      else waiters.push(entry);
    });
  }

  /**
   * After Redis was unreachable (moves published meanwhile are lost to this proxy): publishes
   * again this proxy's moves whose publish failed, then re-reads the owner of every session
   * this proxy knows and re-pins those that moved. Resolves to how many did. Costs one round
   * trip per RESYNC_PAGE sessions, once per outage.
   */
  async resync(): Promise<number> {
    if (this.#unsent.size > 0) await this.#publishUnsent();
    const keys = this.#affinity.store.idsWhere(() => true);
    let repinned = 0;
    for (let start = 0; start < keys.length; start += RESYNC_PAGE) {
      const page = keys.slice(start, start + RESYNC_PAGE);
      // The pins before the read: one that changes during it (a move finished, here or told by
      // another proxy) is newer than the owner read, which must not undo it.
      const pinned = page.map((key) => this.#affinity.nodeOf(key));
      const records = await this.#store.readMany(page);
      records.forEach((record, i) => {
        const key = page[i] as string;
        if (record === undefined || this.#isMoving(key)) return;
        const current = this.#affinity.nodeOf(key);
        if (current !== pinned[i] || current === record.owner) return;
        if (this.#registry.get(record.owner) === undefined) return;
        this.#affinity.assign(key, record.owner, '');
        repinned++;
      });
    }
    this.counters.resynced += repinned;
    return repinned;
  }

  /**
   * Sets every node's session count to the live replicas it owns in Redis: the count of all
   * proxies' sessions, not only those this proxy has seen. Between two reads the local table
   * adds the sessions this proxy creates, so the balancing policy sees them at once.
   */
  refreshCounts(): Promise<void> {
    if (!this.#store.isAvailable) return Promise.resolve();
    this.#counting ??= this.#store
      .countsByOwner()
      .then(
        (counts) => {
          for (const node of this.#registry.all) node.sessions = counts.get(node.id) ?? 0;
        },
        () => undefined, // logged once per outage by the store; counts stay as they were
      )
      .finally(() => {
        this.#counting = undefined;
      });
    return this.#counting;
  }

  #onMessage(raw: string): void {
    const message = parseMessage(raw);
    if (message === undefined) {
      this.#logger.warn('ignoring a malformed message on the moved channel');
      return;
    }
    if (message.from === this.#instanceId) return;
    for (const [key, nodeId] of message.moves) {
      if (this.#registry.get(nodeId) === undefined) continue;
      if (!this.#isMoving(key)) this.#affinity.assign(key, nodeId, '');
      this.counters.adopted++;
      this.#settle(key, nodeId);
    }
  }

  /** Wakes the waiters of `key`: true for those expecting `nodeId` (undefined: none, on stop). */
  #settle(key: string, nodeId: string | undefined): void {
    const waiters = this.#waiters.get(key);
    if (waiters === undefined) return;
    this.#waiters.delete(key);
    for (const waiter of waiters) waiter.settle(waiter.nodeId === nodeId);
  }
}

function parseMessage(raw: string): MovedMessage | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { from, moves } = parsed as Partial<MovedMessage>;
  if (typeof from !== 'string' || !Array.isArray(moves)) return undefined;
  const valid = moves.every(
    (move) =>
      Array.isArray(move) && move.length === 2 && typeof move[0] === 'string' && typeof move[1] === 'string',
  );
  return valid ? { from, moves } : undefined;
}
