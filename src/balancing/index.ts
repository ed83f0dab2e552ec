import type { BalancingPolicyName } from '../config/index.js';
import { LeastConnectionsPolicy } from './least-connections.js';
import { LeastSessionsPolicy } from './least-sessions.js';
import { RandomTwoChoicesPolicy } from './random-two-choices.js';
import { RoundRobinPolicy } from './round-robin.js';
import type { BalancingPolicy } from './types.js';

export { sessionLoad, type BalancedNode, type BalancingPolicy } from './types.js';

/**
 * Creates the policy named in `balancing.policy`. Policies keep state (rotation, current
 * weights): create one per proxy worker and keep it. `random` is used by `random-two-choices`.
 */
export function createBalancingPolicy(
  name: BalancingPolicyName,
  random: () => number = Math.random,
): BalancingPolicy {
  switch (name) {
    case 'least-sessions':
      return new LeastSessionsPolicy();
    case 'round-robin':
      return new RoundRobinPolicy();
    case 'least-connections':
      return new LeastConnectionsPolicy();
    case 'random-two-choices':
      return new RandomTwoChoicesPolicy(random);
    default:
      throw new TypeError(`unknown balancing policy ${JSON.stringify(name satisfies never)}`);
  }
}
