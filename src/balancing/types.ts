import type { BalancingPolicyName } from '../config/index.js';

/**
 * The read-only view of a node the balancer sees. The proxy owns these objects and updates
 * `sessions` and `inFlight` in place, so a policy reads fresh counts without being told.
 */
export interface BalancedNode {
  readonly id: string;
  /** ≥ 1 (the config schema guarantees it). */
  readonly weight: number;
  /** Live sessions whose primary is this node. */
  readonly sessions: number;
  /**
   * Sessions being moved to this node whose move has not finished (their state is still
   * being copied). Policies that balance sessions count them too: the moves of a failover
   * run at the same time, and each must see where the others are going.
   */
  readonly incoming: number;
  /** Requests in flight to this node. */
  readonly inFlight: number;
}

/** The sessions a node holds or is about to hold: what session balancing compares (÷ weight). */
export function sessionLoad(node: BalancedNode): number {
  return node.sessions + node.incoming;
}

/** Chooses the node a new session is pinned to. Instances keep state: one per proxy worker. */
export interface BalancingPolicy {
  readonly name: BalancingPolicyName;
  /**
   * Picks a node among `candidates` for a new session. The proxy passes the array it
   * precomputed on the last node state change (nodes up and not draining); it is never empty,
   * and an empty one throws `NoHealthyNodeError` as a backstop. Allocates nothing per call
   * (round-robin: one slot the first time it sees a node id). Generic so the proxy gets back
   * its own node type without a cast.
   */
  pickNode<Node extends BalancedNode>(candidates: readonly Node[]): Node;
}
