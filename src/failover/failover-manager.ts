import { EventEmitter } from 'node:events';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { AffinityTable } from '../affinity/index.js';
import { sessionLoad } from '../balancing/index.js';
import { NoHealthyNodeError, ReplicaStoreError } from '../errors.js';
import type { Logger } from '../log.js';
import type { NodeRegistry, ProxyNode } from '../nodes/index.js';
import type { ReplicaRecord, ReplicaStore } from '../replication/index.js';
import { concatUnique, filterInSlices, KEYS_PER_SLICE, planChunks, type MoveChunk } from './move-plan.js';
import { emptyReport, mergeReport, type MoveReason, type MoveReport } from './move-report.js';
import type { SessionInstaller } from './session-installer.js';

export type FailoverEvents = {
  'move:start': [nodeId: string, reason: MoveReason, sessions: number];
  'move:end': [report: MoveReport];
};

/**
 * Sessions per install request. Small, because a request for a session in a chunk being
 * installed waits for that install: with the whole failover in one batch it waited for the
 * slowest target's install of every session (bench/failover: ~100 sessions, 20-50 ms).
 */
const DEFAULT_CHUNK_SIZE = 32;
/**
 * Install requests in flight during one move (over all targets). The other chunks queue;
 * a request for a queued session does not wait for its turn: it moves that session at once
 * in an install of its own (`moveSession`).
 */
const DEFAULT_CHUNKS_IN_FLIGHT = 8;
/** Above this many sessions in the table, a node going down yields between its passes over them (~2 ms each below it). */
const LARGE_TABLE = 50_000;
/** Attempts per batch when a target fails while receiving it. */
const MAX_ATTEMPTS = 3;

/**
 * Moves sessions, state and all, off a node: when health marks it down (proactively), when a
 * request for one of its sessions arrives first (on demand), and for drain-evacuate and
 * rebalance. For each session: pick a target by the balancing policy, take ownership in the
 * replica store (an atomic transfer, so a session never gets two owners), install the state
 * on the target, then re-pin the affinity. Requests for a session being moved wait for it.
 * Decided in one place only (this control-plane object), never per worker.
 */
export class FailoverManager extends EventEmitter<FailoverEvents> {
  readonly #registry: NodeRegistry;
  readonly #affinity: AffinityTable;
  readonly #replicas: ReplicaStore;
  readonly #installer: SessionInstaller;
  readonly #pickNode: (excluding?: string) => ProxyNode;
  readonly #onTargetFailure: (node: ProxyNode, error: Error) => void;
  readonly #logger: Logger;
  readonly #onMoved: FailoverOptions['onMoved'];
  readonly #awaitPeerMove: FailoverOptions['awaitPeerMove'];
  readonly #chunkSize: number;
  readonly #chunksInFlight: number;
  /** Session key → the move in progress for it: a request arriving meanwhile awaits it. */
  readonly #moving = new Map<string, Promise<ProxyNode>>();
  /** Node id → keys moved off it while it was down, to evict when it comes back. */
  readonly #movedAway = new Map<string, Set<string>>();
  /** Node id → the proactive move running for it. */
  readonly #running = new Map<string, Promise<MoveReport>>();
  readonly totals = { failovers: 0, moved: 0, lost: 0, failed: 0 };

  constructor(options: FailoverOptions) {
    super();
    this.#registry = options.registry;
    this.#affinity = options.affinity;
    this.#replicas = options.replicas;
    this.#installer = options.installer;
    this.#pickNode = options.pickNode;
    this.#onTargetFailure = options.onTargetFailure;
    this.#logger = options.logger;
    this.#onMoved = options.onMoved;
    this.#awaitPeerMove = options.awaitPeerMove;
    this.#chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.#chunksInFlight = options.chunksInFlight ?? DEFAULT_CHUNKS_IN_FLIGHT;
  }

  /** Whether a move is under way for this session (the proxy then waits for it). */
  movingTo(key: string): Promise<ProxyNode> | undefined {
    return this.#moving.get(key);
  }

  /**
   * On demand: a request arrived for a session whose node cannot serve it. Resolves to the
   * node that now holds the session (joining a move already under way).
   */
  moveSession(key: string, fromNodeId: string): Promise<ProxyNode> {
    const pending = this.#moving.get(key);
    if (pending !== undefined) return pending;
    const holder = this.#affinity.nodeOf(key);
    if (holder !== undefined && holder !== fromNodeId) {
      const node = this.#registry.get(holder);
      if (node?.isServing) return Promise.resolve(node);
    }
    const holderOf = (): ProxyNode | undefined => {
      const node = this.#registry.get(this.#affinity.nodeOf(key) ?? '');
      return node !== undefined && node.isServing ? node : undefined;
    };
    return this.#moveBatch([key], fromNodeId, 'request').then(async (first) => {
      let report = first;
      let node = holderOf();
      // It joined another move of this session, which failed (e.g. begun while Redis was
      // still away): one more try of its own, so this request gets the answer of now.
      if (node === undefined && report.moved + report.lost + report.failed === 0) {
        report = await this.#moveBatch([key], fromNodeId, 'request');
        node = holderOf();
      }
      // Moved off a node that stays up (a reset makes a node suspect, not down): it forgets
      // its copy now, not when it next comes up. Not awaited: the request goes on.
      if (report.moved + report.lost > 0 && this.#registry.get(fromNodeId)?.isHealthy === true) {
        void this.#evictMovedAway(fromNodeId);
      }
      if (node !== undefined) return node;
      if (report.storeError !== undefined) {
        throw new ReplicaStoreError(`session cannot move: ${report.storeError}`);
      }
      throw new NoHealthyNodeError();
    });
  }

  /**
   * Moves every session off a node (failover when down, or evacuate). Resolves when all
   * are moved; a second call while one runs joins it.
   */
  moveAll(nodeId: string, reason: MoveReason): Promise<MoveReport> {
    const running = this.#running.get(nodeId);
    if (running !== undefined) return running;
    const run = this.#moveAll(nodeId, reason).finally(() => this.#running.delete(nodeId));
    this.#running.set(nodeId, run);
    return run;
  }

  /**
   * Moves sessions from the busiest nodes to the idlest until every node holds within
   * `spread` (a fraction of the mean, e.g. 0.2) of the mean. Least recently used sessions
   * move first: they are the least likely to have a request in flight.
   */
  async rebalance(spread: number): Promise<MoveReport> {
    const report = emptyReport('*', 'rebalance');
    const nodes = this.#registry.candidates;
    if (nodes.length < 2) return report;
    const totalWeight = nodes.reduce((sum, node) => sum + node.weight, 0);
    const total = nodes.reduce((sum, node) => sum + node.sessions, 0);
    const fairShare = (node: ProxyNode) => (total * node.weight) / totalWeight;
    for (const source of [...nodes].sort((a, b) => b.sessions / b.weight - a.sessions / a.weight)) {
      const excess = Math.floor(source.sessions - fairShare(source) * (1 + spread));
      if (excess <= 0) continue;
      const keys = this.#affinity
        .sessionsOf(source.id)
        .slice(0, Math.ceil(source.sessions - fairShare(source)));
      const part = await this.#moveKeys(
        keys,
        source.id,
        'rebalance',
        // Sessions this rebalance is already sending a target count towards its share.
        (candidate) => sessionLoad(candidate) < fairShare(candidate),
      );
      mergeReport(report, part);
    }
    report.durationMs = Date.now() - report.startedAt;
    this.emit('move:end', report);
    return report;
  }

  /** A node came back: make it forget sessions that moved away while it was down (never two owners). */
  onNodeUp(nodeId: string): Promise<void> {
    return this.#evictMovedAway(nodeId);
  }

  /**
   * Makes a node that is up forget the sessions moved off it. Until then it holds stale
   * copies: its writes to them are fenced, but after a replica store lost its data (Redis
   * restarted empty) its re-seed could race the new owner's for ownership.
   */
  async #evictMovedAway(nodeId: string): Promise<void> {
    const keys = this.#movedAway.get(nodeId);
    const node = this.#registry.get(nodeId);
    if (keys === undefined || keys.size === 0 || node === undefined) return;
    const sent = [...keys];
    try {
      await this.#installer.evict(node.url, sent);
      // Only those: keys added while the request was out wait for the next eviction.
      for (const key of sent) keys.delete(key);
      if (keys.size === 0 && this.#movedAway.get(nodeId) === keys) this.#movedAway.delete(nodeId);
    } catch (error) {
      // The replica store's owner fence still refuses its writes for those sessions.
      this.#logger.warn(
        { node: nodeId, error: (error as Error).message },
        'could not evict moved sessions from returning node',
      );
    }
  }

  async #moveAll(nodeId: string, reason: MoveReason): Promise<MoveReport> {
    // The affinity table knows the sessions it has seen; the replica store also knows those
    // replicated since a proxy restart that no request has touched yet. The replica store's
    // are listed first and the table's last, so that list is current when the move starts (a
    // session recorded on the node meanwhile is in it).
    let stored: string[] = [];
    try {
      stored = await this.#replicas.keysOf(nodeId);
    } catch (error) {
      // Redis outage: the known sessions are tried (and fail loudly) below; the caller retries later.
      this.#logger.error({ node: nodeId, err: error }, `${reason}: cannot list the sessions of ${nodeId}`);
    }
    // With many sessions, a turn between the two passes over all of them (each tens of ms at
    // 1M). With few, none: each turn lets the moves that requests ask for start first, one
    // session per install, all on the same least-loaded node (traced in bench/failover).
    const isLarge = this.#affinity.size > LARGE_TABLE;
    if (isLarge) await yieldToEventLoop();
    // Replicas the table does not have here: unseen since a proxy restart, or pinned by the
    // table to a node that cannot serve them (the table and the store disagree). One the table
    // has on a serving node is there already.
    const elsewhere = await filterInSlices(stored, (key) => {
      const holder = this.#affinity.nodeOf(key);
      return holder === undefined || (holder !== nodeId && this.#registry.get(holder)?.isServing !== true);
    });
    // A dead node's sessions go most recently used first, the likeliest to be asked for next:
    // their requests then find them moved. Evacuate keeps least recently used first: the node
    // still serves every session not yet taken into a move, and a request for one taken waits.
    const known = this.#affinity.sessionsOf(nodeId, reason === 'down');
    // Each key once: one pinned here while the replicas were checked is in both lists. A few
    // (the usual case) are checked against the table in this same turn, exactly; many (a
    // table half warm after a proxy restart) in slices. A replica pinned here when checked
    // whose table entry expired or was deleted before the listing is in neither list: it was
    // idle for the whole idle timeout or ended, and a request for it still moves it.
    const keys =
      elsewhere.length <= KEYS_PER_SLICE
        ? known.concat(elsewhere.filter((key) => this.#affinity.nodeOf(key) !== nodeId))
        : await concatUnique(known, elsewhere);
    // And between that pass and the planning pass over every key (~60 ms at 334 000).
    if (isLarge) await yieldToEventLoop();
    const report = await this.#moveKeys(keys, nodeId, reason);
    const late = await this.#moveLate(nodeId, reason, keys, report);
    if (keys.length + late > 0) this.emit('move:end', report);
    return report;
  }

  /**
   * Sessions pinned to the node after `#moveAll` listed it: it was up again for a moment (a
   * call for it meanwhile joined that run), or a worker's report came late. One more pass takes
   * them, into `report`, while the node still cannot serve them; resolves to how many. The
   * node's count tells whether there are any beyond those that could not move, without a walk
   * over the table (~20 ms at 1M sessions).
   */
  async #moveLate(
    nodeId: string,
    reason: MoveReason,
    listed: readonly string[],
    report: MoveReport,
  ): Promise<number> {
    const source = this.#registry.get(nodeId);
    if (source === undefined || source.isServing || source.sessions <= report.failed) return 0;
    const wasListed = new Set(listed);
    const late = this.#affinity
      .sessionsOf(nodeId, reason === 'down')
      .filter((key) => !wasListed.has(key) && !this.#moving.has(key));
    if (late.length === 0) return 0;
    // Announced only if the first pass had nothing (then this is the move).
    mergeReport(report, await this.#moveKeys(late, nodeId, reason, undefined, listed.length === 0));
    report.durationMs = Date.now() - report.startedAt;
    return late.length;
  }

  async #moveKeys(
    keys: string[],
    fromNodeId: string,
    reason: MoveReason,
    accepts: (candidate: ProxyNode) => boolean = () => true,
    isAnnounced = true,
  ): Promise<MoveReport> {
    const report = emptyReport(fromNodeId, reason);
    // A node with no sessions (e.g. down before it ever served) is no event worth reporting,
    // nor is a later pass of the same move (`isAnnounced` false).
    if (isAnnounced && reason !== 'rebalance' && keys.length > 0) {
      this.totals.failovers += reason === 'down' ? 1 : 0;
      this.emit('move:start', fromNodeId, reason, keys.length);
    }
    // Targets for every session up front, so the balancing policy spreads the whole move as
    // one (chunks in flight together would each see the counts without the others).
    const chunks = planChunks(keys, () => this.#pickTarget(fromNodeId, accepts), this.#chunkSize);
    const unplanned = keys.length - chunks.reduce((sum, chunk) => sum + chunk.keys.length, 0);
    report.failed += unplanned;
    this.totals.failed += unplanned;
    let next = 0;
    const runChunks = async (): Promise<void> => {
      while (next < chunks.length) {
        const chunk = chunks[next++] as MoveChunk;
        mergeReport(report, await this.#moveBatch(chunk.keys, fromNodeId, reason, accepts, chunk.target));
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.#chunksInFlight, chunks.length) }, runChunks));
    } finally {
      // A batch threw: the chunks not started never will be (a request still moves any of
      // their sessions on demand), and their targets' counts go.
      for (; next < chunks.length; next++) {
        const chunk = chunks[next] as MoveChunk;
        chunk.target.incoming -= chunk.keys.length;
      }
    }
    // Evacuate, rebalance: the source is up and still holds what moved. (A request's move,
    // which may leave a live source too, runs through moveSession, which evicts there.)
    if (reason !== 'down' && this.#registry.get(fromNodeId)?.isHealthy) {
      await this.#evictMovedAway(fromNodeId);
    }
    report.durationMs = Date.now() - report.startedAt;
    if (report.storeError !== undefined) {
      this.#logger.error(
        { node: fromNodeId, reason, failed: report.failed, error: report.storeError },
        `${reason}: ${report.failed} sessions of ${fromNodeId} cannot move while the replica store is unavailable`,
      );
    } else if (keys.length > 0) {
      this.#logger.info(
        {
          node: fromNodeId,
          reason,
          moved: report.moved,
          lost: report.lost,
          failed: report.failed,
          ms: report.durationMs,
        },
        `${reason}: ${report.moved + report.lost} sessions moved from ${fromNodeId} in ${report.durationMs} ms`,
      );
    }
    return report;
  }

  /**
   * Moves one batch: transfer ownership, install on targets, re-pin. `plannedTarget` (a
   * chunk of a larger move) takes all of them if it still can; otherwise each key gets a
   * target now. A request waiting for one of these sessions is let go as soon as the install
   * of that session's target is done, not when the whole batch is.
   */
  async #moveBatch(
    keys: readonly string[],
    fromNodeId: string,
    reason: MoveReason,
    accepts: (candidate: ProxyNode) => boolean = () => true,
    plannedTarget?: ProxyNode,
  ): Promise<MoveReport> {
    const report = emptyReport(fromNodeId, reason);
    // The plan's count of these keys as incoming (planChunks): taken again below, in this
    // same synchronous run, for the keys this batch moves to the planned target.
    if (plannedTarget !== undefined) plannedTarget.incoming -= keys.length;
    // Skip keys being moved right now, and keys the affinity table already has elsewhere.
    const mine = keys.filter((key) => {
      if (this.#moving.has(key)) return false;
      const holder = this.#affinity.nodeOf(key);
      return holder === undefined || holder === fromNodeId || !this.#registry.get(holder)?.isServing;
    });
    if (mine.length === 0) {
      await Promise.allSettled(keys.map((key) => this.#moving.get(key)));
      return report;
    }
    // Requests for these keys wait on their group's move; one that nobody awaits must not
    // become an unhandled rejection (Node 20 would end the process).
    const holderAfterMove = (key: string): ProxyNode => {
      const node = this.#registry.get(this.#affinity.nodeOf(key) ?? '');
      if (node === undefined || !node.isServing) throw new NoHealthyNodeError();
      return node;
    };
    const release = new Map<string, () => void>();
    for (const key of mine) {
      const waiting = new Promise<void>((resolve) => release.set(key, resolve)).then(() =>
        holderAfterMove(key),
      );
      waiting.catch(() => undefined);
      this.#moving.set(key, waiting);
    }
    // Done with a key: it is re-pinned (or stays where it was, if it could not move) and the
    // requests waiting for it go on.
    const settle = (group: readonly string[]): void => {
      for (const key of group) {
        // Sessions that could not move stay where they were.
        this.#affinity.unmarkMoving(key);
        release.get(key)?.();
        release.delete(key);
        this.#moving.delete(key);
      }
    };
    // From here until each is re-pinned, requests for these sessions wait for the move.
    this.#affinity.markMoving(mine);
    try {
      // Group by target: one install request per target node.
      const groups = new Map<ProxyNode, string[]>();
      if (plannedTarget !== undefined && plannedTarget.isServing && accepts(plannedTarget)) {
        plannedTarget.incoming += mine.length;
        groups.set(plannedTarget, mine);
      } else {
        for (const key of mine) {
          let target: ProxyNode;
          try {
            target = this.#pickTarget(fromNodeId, accepts);
          } catch {
            report.failed++;
            continue;
          }
          // Counted at once so the balancing policy spreads the rest of the batch, and other
          // moves under way see it (released by #moveGroup once the key is re-pinned).
          target.incoming++;
          const group = groups.get(target);
          if (group) group.push(key);
          else groups.set(target, [key]);
        }
      }
      await Promise.all(
        [...groups].map(async ([target, group]) => {
          try {
            await this.#moveGroup(group, fromNodeId, target, report, accepts);
          } finally {
            settle(group);
          }
        }),
      );
    } finally {
      // Keys with no target, or a group that threw.
      settle([...release.keys()]);
    }
    this.totals.moved += report.moved;
    this.totals.lost += report.lost;
    this.totals.failed += report.failed;
    return report;
  }

  /**
   * A move gave up after the ownership transfer: the sessions stay where they were, so the
   * replica store names their node owner again. A live node (evacuate, rebalance) must be able
   * to write them; it is also sent the records, in case it dropped a copy meanwhile (a write
   * refused as the ownership changed makes it do so; a copy it still holds wins, by version).
   * A dead node's are taken from it again by the next move, as before this one (with one
   * proxy: in distributed mode other proxies may be waiting on the last target's move, and
   * one of them installs the replica there itself).
   */
  async #giveBack(records: readonly ReplicaRecord[], owner: string, fromNodeId: string): Promise<void> {
    if (records.length === 0) return;
    const source = this.#registry.get(fromNodeId);
    const liveSource = source?.isHealthy === true ? source : undefined;
    if (liveSource === undefined && this.#awaitPeerMove !== undefined) return;
    try {
      await Promise.all(records.map((record) => this.#replicas.transfer(record.key, owner, fromNodeId)));
      if (liveSource !== undefined) await this.#installer.install(liveSource.url, records);
    } catch (error) {
      this.#logger.error(
        { node: fromNodeId, sessions: records.length, err: error },
        `could not give ${records.length} sessions that failed to move back to ${fromNodeId}`,
      );
    }
  }

  async #moveGroup(
    keys: string[],
    fromNodeId: string,
    firstTarget: ProxyNode,
    report: MoveReport,
    accepts: (candidate: ProxyNode) => boolean,
  ): Promise<void> {
    let owner = fromNodeId;
    let target = firstTarget;
    // The caller counted the keys in `firstTarget.incoming`; the count follows them (see the
    // retry below) and goes once they are re-pinned or given up.
    let counted = keys.length;
    try {
      for (let attempt = 1; ; attempt++) {
        const records: ReplicaRecord[] = [];
        /** Keys another move already took (the replica has another live owner): follow it, do not move. */
        const alreadyMoved = new Map<string, string>();
        try {
          await Promise.all(
            keys.map(async (key) => {
              let record = await this.#replicas.transfer(key, owner, target.id);
              if (record === undefined) {
                const current = await this.#replicas.read(key);
                if (current !== undefined && current.owner !== owner) {
                  if (this.#registry.get(current.owner)?.isServing) alreadyMoved.set(key, current.owner);
                  // Owned by a node that is gone too (down, or removed from the config): take it from there.
                  else record = await this.#replicas.transfer(key, current.owner, target.id);
                }
              }
              if (record !== undefined) records.push(record);
            }),
          );
          // Another proxy (distributed mode) won these transfers: they are not on their way
          // here. Follow that proxy once its move is done.
          target.incoming -= alreadyMoved.size;
          counted -= alreadyMoved.size;
          await Promise.all([...alreadyMoved].map(([key, holder]) => this.#adopt(key, holder)));
        } catch (error) {
          if (!(error instanceof ReplicaStoreError)) throw error;
          // Transfers that did succeed stay with the target in the store; a request or the
          // retry after the outage finds them there (owner lookup) and installs them.
          report.failed += keys.length;
          report.storeError = error.message;
          return;
        }
        try {
          if (records.length > 0) await this.#installer.install(target.url, records);
        } catch (error) {
          this.#onTargetFailure(target, error as Error);
          // The records now belong to the failed target: take them from it for the next one.
          owner = target.id;
          let next: ProxyNode | undefined;
          try {
            if (attempt < MAX_ATTEMPTS) next = this.#pickTarget(fromNodeId, accepts, target.id);
          } catch {
            next = undefined;
          }
          if (next === undefined) {
            report.failed += keys.length;
            await this.#giveBack(records, owner, fromNodeId);
            return;
          }
          // The keys' count as incoming follows them to the next target.
          target.incoming -= counted;
          next.incoming += keys.length;
          counted = keys.length;
          target = next;
          continue;
        }
        const withState = new Set(records.map((record) => record.key));
        const moves: Array<[string, string]> = [];
        let count = 0;
        for (const key of keys) {
          const holder = alreadyMoved.get(key);
          if (holder !== undefined) {
            this.#affinity.assign(key, holder, '');
            continue;
          }
          this.#affinity.assign(key, target.id, '');
          moves.push([key, target.id]);
          if (withState.has(key)) report.moved++;
          else report.lost++;
          count++;
          this.#rememberMovedAway(fromNodeId, key);
          // Back on a node it once moved off: that node's copy is the live one now, never evicted.
          this.#movedAway.get(target.id)?.delete(key);
        }
        if (count > 0) report.targets[target.id] = (report.targets[target.id] ?? 0) + count;
        if (moves.length > 0) this.#onMoved?.(moves);
        return;
      }
    } finally {
      target.incoming -= counted;
    }
  }

  /**
   * Another proxy took `key` for `holder`: wait until it says the state is installed there
   * (or it is known here already). If it never says (it died mid-move, or its message was
   * lost), install the replica ourselves: a node keeps a version it already holds, so a
   * second install of the same record changes nothing.
   */
  async #adopt(key: string, holder: string): Promise<void> {
    if (this.#awaitPeerMove === undefined || this.#affinity.nodeOf(key) === holder) return;
    if (await this.#awaitPeerMove(key, holder)) return;
    const record = await this.#replicas.read(key);
    const node = this.#registry.get(holder);
    if (record === undefined || record.owner !== holder || node === undefined || !node.isServing) return;
    try {
      await this.#installer.install(node.url, [record]);
    } catch (error) {
      this.#onTargetFailure(node, error as Error);
    }
  }

  #pickTarget(
    fromNodeId: string,
    accepts: (candidate: ProxyNode) => boolean,
    alsoExcluding?: string,
  ): ProxyNode {
    const target = this.#pickNode(fromNodeId);
    if (target.id !== alsoExcluding && accepts(target)) return target;
    const fallback = this.#registry.candidates.find(
      (node) => node.id !== fromNodeId && node.id !== alsoExcluding && accepts(node),
    );
    if (fallback === undefined) throw new NoHealthyNodeError();
    return fallback;
  }

  #rememberMovedAway(nodeId: string, key: string): void {
    let keys = this.#movedAway.get(nodeId);
    if (keys === undefined) this.#movedAway.set(nodeId, (keys = new Set()));
    keys.add(key);
  }
}

/** Options of a FailoverManager. */
export interface FailoverOptions {
  registry: NodeRegistry;
  affinity: AffinityTable;
  replicas: ReplicaStore;
  installer: SessionInstaller;
  pickNode: (excluding?: string) => ProxyNode;
  onTargetFailure: (node: ProxyNode, error: Error) => void;
  logger: Logger;
  /** Told of sessions this manager moved (state installed, re-pinned), e.g. to tell other proxies. */
  onMoved?: (moves: ReadonlyArray<[key: string, nodeId: string]>) => void;
  /**
   * Distributed mode: another proxy won the transfer of `key` to `nodeId`. Resolves true once
   * that proxy reports the move done, false if it did not in time.
   */
  awaitPeerMove?: (key: string, nodeId: string) => Promise<boolean>;
  /** Sessions per install request of a larger move (default 32). */
  chunkSize?: number;
  /** Install requests in flight during one move, over all targets (default 8). */
  chunksInFlight?: number;
}
