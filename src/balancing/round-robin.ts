import { NoHealthyNodeError } from '../errors.js';
import type { BalancedNode, BalancingPolicy } from './types.js';

interface RoundRobinSlot {
  current: number;
}

/**
 * Smooth weighted round robin, nginx's algorithm (ngx_http_upstream_get_peer): every call each
 * candidate's current weight grows by its weight, the largest wins (first in order on a tie)
 * and drops by the total. Weights 5:1:1 give `a a b a c a a`, not `a a a a a b c`.
 *
 * Current weights are kept per node id, so the candidate set may change between calls. A node
 * absent from the candidates keeps its current weight frozen, as nginx does for a down peer;
 * the sum over every node ever seen stays 0, so the rotation neither drifts nor needs a reset
 * when the node comes back. The map holds one slot per configured node, allocated once.
 */
export class RoundRobinPolicy implements BalancingPolicy {
  readonly name = 'round-robin';
  readonly #slots = new Map<string, RoundRobinSlot>();

  pickNode<Node extends BalancedNode>(candidates: readonly Node[]): Node {
    let best: Node | undefined;
    let bestSlot: RoundRobinSlot | undefined;
    let totalWeight = 0;
    for (let index = 0; index < candidates.length; index++) {
      const node = candidates[index];
      if (node === undefined) continue;
      let slot = this.#slots.get(node.id);
      if (slot === undefined) {
        slot = { current: 0 };
        this.#slots.set(node.id, slot);
      }
      slot.current += node.weight;
      totalWeight += node.weight;
      if (bestSlot === undefined || slot.current > bestSlot.current) {
        best = node;
        bestSlot = slot;
      }
    }
    if (best === undefined || bestSlot === undefined) throw new NoHealthyNodeError();
    bestSlot.current -= totalWeight;
    return best;
  }
}
