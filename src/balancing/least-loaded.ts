import { NoHealthyNodeError } from '../errors.js';
import type { BalancingPolicyName } from '../config/index.js';
import { sessionLoad, type BalancedNode, type BalancingPolicy } from './types.js';

/**
 * The node with the lowest load per unit of weight: its sessions (those moving to it
 * included), or its requests in flight. A tie goes to the first tied node after
 * the last pick, so tied nodes take turns: on a fresh start, or while the counts the proxy
 * keeps lag behind, new sessions spread instead of all landing on node one.
 */
export abstract class LeastLoadedPolicy implements BalancingPolicy {
  abstract readonly name: BalancingPolicyName;
  readonly #bySessions: boolean;
  #cursor = 0;

  constructor(load: 'sessions' | 'inFlight') {
    this.#bySessions = load === 'sessions';
  }

  pickNode<Node extends BalancedNode>(candidates: readonly Node[]): Node {
    const count = candidates.length;
    // Start after the last pick. If the candidate array changed since, that index names some
    // other node, which is as good a start as any; it only has to be in range.
    const start = this.#cursor < count ? this.#cursor : 0;
    let best = candidates[start];
    if (best === undefined) throw new NoHealthyNodeError();
    let bestIndex = start;
    for (let offset = 1; offset < count; offset++) {
      const index = start + offset < count ? start + offset : start + offset - count;
      const node = candidates[index];
      // a/w < b/v ⇔ a·v < b·w for positive weights: exact on integers, no division.
      if (node !== undefined && this.#loadOf(node) * best.weight < this.#loadOf(best) * node.weight) {
        best = node;
        bestIndex = index;
      }
    }
    this.#cursor = bestIndex + 1;
    return best;
  }

  #loadOf(node: BalancedNode): number {
    return this.#bySessions ? sessionLoad(node) : node.inFlight;
  }
}
