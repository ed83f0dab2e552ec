import { SessionLimitError } from '../errors.js';
import type { NodeRegistry, ProxyNode } from '../nodes/index.js';
import { SessionStore, type SessionEntry } from '../session/index.js';
import type { AffinityView } from './affinity-view.js';

/** The pseudo node of a session whose move is under way (no node has this id: ids are validated). */
export const MOVING = '~moving';

/** What the table remembers of a session: the node that holds it. */
export interface AffinityRecord {
  nodeId: string;
  /** The session's version in the last answer the proxy saw (0: none yet). */
  version: number;
}

/**
 * Session → node, for what the session id cannot say by itself: which node holds a
 * session after a failover moved it, how many sessions each node holds, and when a
 * session expires. Built on the same SessionStore the nodes use, so entries expire with
 * `session.idleTimeout` and are swept in slices.
 */
export class AffinityTable implements AffinityView {
  readonly store: SessionStore<AffinityRecord>;
  readonly #registry: NodeRegistry;
  /** Sessions whose node differs from the route in their id (moved by failover). */
  readonly #moved = new Map<string, string>();
  /** For each session marked moving: its moved entry before the mark (undefined: none), restored if the move fails. */
  readonly #beforeMoving = new Map<string, string | undefined>();
  /** Sessions that could not be recorded because the table was full. */
  untracked = 0;
  /** Told when a session's moved-to node changes (undefined: no longer moved), so proxy workers can mirror it. */
  onMovedChange: ((key: string, nodeId: string | undefined) => void) | undefined;
  /** Told when moved changes must reach the workers now rather than on the next turn. */
  onMovedFlush: (() => void) | undefined;

  constructor(options: {
    registry: NodeRegistry;
    idleTimeoutMs: number;
    maxSessions: number;
    sweepIntervalMs: number;
    activeWindowMs: number;
    /** Wall clock in ms (tests; default: the session store's). */
    now?: () => number;
  }) {
    this.#registry = options.registry;
    this.store = new SessionStore<AffinityRecord>({
      idleTimeoutMs: options.idleTimeoutMs,
      maxSessions: options.maxSessions,
      sweepIntervalMs: options.sweepIntervalMs,
      activeWindowMs: options.activeWindowMs,
      ...(options.now !== undefined ? { now: options.now } : {}),
    });
    const release = (entry: SessionEntry<AffinityRecord>): void => {
      this.#count(entry.value.nodeId, -1);
      this.#beforeMoving.delete(entry.id);
      if (this.#moved.delete(entry.id)) this.onMovedChange?.(entry.id, undefined);
    };
    this.store.on('expired', release);
    // A node added back by a reload is a new ProxyNode counting from 0, while sessions still
    // pinned to its id (a failover that could not move them, or is still moving them) count
    // down on it as they go: it starts from what the table holds, expired ones not yet swept
    // included (the sweep counts each of them down).
    this.#registry.on('changed', (added: readonly ProxyNode[]) => {
      for (const node of added)
        node.sessions = this.store.countWhere((entry) => entry.value.nodeId === node.id);
    });
    this.store.on('evicted', release);
    this.store.on('deleted', release);
  }

  /** Live sessions in the table. */
  get size(): number {
    return this.store.size;
  }

  /** Whether any session has moved off the node its id names (lets the hot path skip a lookup). */
  get hasMoved(): boolean {
    return this.#moved.size > 0;
  }

  /** The node a moved session now lives on, if it moved. */
  movedNodeOf(key: string): string | undefined {
    return this.#moved.get(key);
  }

  /** The node holding `key`, without refreshing its idle time. */
  nodeOf(key: string): string | undefined {
    return this.store.peek(key)?.value.nodeId;
  }

  /**
   * Records that `nodeId` served session `key`: creates the entry, or refreshes it. It never
   * re-pins an existing session: a late answer from the node a session just moved off
   * (evacuate, rebalance) must not pull it back. Only `assign` (failover) moves sessions.
   */
  record(key: string, nodeId: string, _isNew = false, version = 0): void {
    const entry = this.store.get(key);
    if (entry === undefined) this.#create(key, nodeId, nodeId, version);
    else if (version > entry.value.version) entry.value.version = version;
  }

  /** The session's version in the last answer the proxy saw (0 when it saw none). */
  versionOf(key: string): number {
    return this.store.peek(key)?.value.version ?? 0;
  }

  #create(key: string, nodeId: string, routedNodeId: string, version = 0): void {
    try {
      this.store.create(key, { nodeId, version });
    } catch (error) {
      if (!(error instanceof SessionLimitError)) throw error;
      this.untracked++;
      return;
    }
    this.#count(nodeId, 1);
    if (nodeId !== routedNodeId) this.#setMoved(key, nodeId);
  }

  /**
   * Re-pins a session to another node (failover, evacuate, rebalance). `routedNodeId` is
   * the node its current id routes to: when they differ the hot path must look it up.
   */
  assign(key: string, nodeId: string, routedNodeId: string): void {
    this.#beforeMoving.delete(key);
    const entry = this.store.peek(key);
    if (entry === undefined) {
      this.#create(key, nodeId, routedNodeId);
      return;
    }
    const previous = entry.value.nodeId;
    if (previous !== nodeId) {
      // In place, not through `update`, which would restart the idle time: a move is not a use
      // of the session. The node and the replica store keep its last access time, so the entry
      // must expire with them; refreshed on every move, an abandoned session outlived them for
      // as long as nodes kept failing within one idleTimeout, counted on a node that no longer
      // held it (soak with a kill every 15 s: 2 731 entries for ~1 000 live sessions).
      entry.value.nodeId = nodeId;
      this.#count(previous, -1);
      this.#count(nodeId, 1);
    }
    if (nodeId === routedNodeId) {
      if (this.#moved.delete(key)) this.onMovedChange?.(key, undefined);
    } else this.#setMoved(key, nodeId);
  }

  /**
   * Marks sessions as being moved: until `assign` pins them, the request path sees a node
   * that does not exist and takes the slow path, which waits for the move — so no request
   * reaches the old node between the ownership transfer and the re-pin. `onMovedFlush`
   * then pushes the marks to proxy workers at once.
   */
  markMoving(keys: readonly string[]): void {
    for (const key of keys) {
      const current = this.#moved.get(key);
      if (current !== MOVING) this.#beforeMoving.set(key, current);
      this.#setMoved(key, MOVING);
    }
    this.onMovedFlush?.();
  }

  /**
   * Undoes `markMoving` for a session that could not be moved: it stays where it was, so its
   * moved entry is what it was before the mark — none, or the node an earlier move took it to
   * (which the node its id routes to does not hold).
   */
  unmarkMoving(key: string): void {
    const before = this.#beforeMoving.get(key);
    this.#beforeMoving.delete(key);
    if (this.#moved.get(key) !== MOVING) return;
    if (before === undefined) {
      this.#moved.delete(key);
      this.onMovedChange?.(key, undefined);
    } else this.#setMoved(key, before);
  }

  /** Every moved session and its node (a new proxy worker starts from this). */
  movedEntries(): Array<[string, string]> {
    return [...this.#moved];
  }

  #setMoved(key: string, nodeId: string): void {
    this.#moved.set(key, nodeId);
    this.onMovedChange?.(key, nodeId);
  }

  /** Sessions held by a node, least recently used first (most recently used first with `newestFirst`). */
  sessionsOf(nodeId: string, newestFirst = false): string[] {
    return this.store.idsWhere((entry) => entry.value.nodeId === nodeId, newestFirst);
  }

  delete(key: string): boolean {
    return this.store.delete(key);
  }

  start(): void {
    this.store.start();
  }

  stop(): void {
    this.store.stop();
  }

  #count(nodeId: string, delta: number): void {
    const node = this.#registry.get(nodeId);
    if (node) node.sessions += delta;
  }
}
