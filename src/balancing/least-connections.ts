import { NoHealthyNodeError } from '../errors.js';
import type { BalancedNode, BalancingPolicy } from './types.js';

/**
 * The node with the fewest requests in flight per unit of weight: follows the load a node is
 * under now rather than how many sessions it holds. Tied nodes take turns, as in
 * `least-sessions`.
 */
export class LeastConnectionsPolicy implements BalancingPolicy {
  readonly name = 'least-connections';
  #cursor = 0;

  pickNode<Node extends BalancedNode>(candidates: readonly Node[]): Node {
    const count = candidates.length;
    const start = this.#cursor < count ? this.#cursor : 0;
    let best = candidates[start];
    if (best === undefined) throw new NoHealthyNodeError();
    let bestIndex = start;
    for (let offset = 1; offset < count; offset++) {
      const index = start + offset < count ? start + offset : start + offset - count;
      const node = candidates[index];
      if (node !== undefined && node.inFlight * best.weight < best.inFlight * node.weight) {
        best = node;
        bestIndex = index;
      }
    }
    this.#cursor = bestIndex + 1;
    return best;
  }
}
