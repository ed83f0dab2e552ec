import { NoHealthyNodeError } from '../errors.js';
import { sessionLoad, type BalancedNode, type BalancingPolicy } from './types.js';

/**
 * The power of two choices (Mitzenmacher, 2001): sample two distinct candidates, each drawn with
 * probability proportional to its weight, and take the one with fewer sessions per unit of
 * weight, sessions moving to it included (the first drawn on a tie). It never picks the one
 * most loaded node, and unlike `least-sessions` it does not send every new session to the
 * same node while the counts it reads are stale, which matters when several proxy workers
 * balance at once.
 */
export class RandomTwoChoicesPolicy implements BalancingPolicy {
  readonly name = 'random-two-choices';
  readonly #random: () => number;

  /** `random` returns a number in [0, 1), like `Math.random` (the default); tests seed one. */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  pickNode<Node extends BalancedNode>(candidates: readonly Node[]): Node {
    const count = candidates.length;
    if (count < 2) {
      const only = candidates[0];
      if (only === undefined) throw new NoHealthyNodeError();
      return only;
    }
    let totalWeight = 0;
    for (let index = 0; index < count; index++) totalWeight += candidates[index]?.weight ?? 0;
    const firstIndex = this.#drawIndex(candidates, totalWeight, -1);
    const first = candidates[firstIndex];
    if (first === undefined) throw new NoHealthyNodeError();
    const second = candidates[this.#drawIndex(candidates, totalWeight - first.weight, firstIndex)];
    if (second === undefined) return first;
    return sessionLoad(second) * first.weight < sessionLoad(first) * second.weight ? second : first;
  }

  /** Draws an index with probability weight / totalWeight, never `skipIndex`. */
  #drawIndex(candidates: readonly BalancedNode[], totalWeight: number, skipIndex: number): number {
    let ticket = this.#random() * totalWeight;
    let lastIndex = -1;
    for (let index = 0; index < candidates.length; index++) {
      const node = candidates[index];
      if (index === skipIndex || node === undefined) continue;
      if (ticket < node.weight) return index;
      ticket -= node.weight;
      lastIndex = index;
    }
    // Reached only if `random` returned ≥ 1 or rounding left a sliver: take the last eligible.
    return lastIndex;
  }
}
