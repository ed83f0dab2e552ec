import { LeastLoadedPolicy } from './least-loaded.js';

/**
 * The node with the fewest requests in flight per unit of weight: follows the load a node is
 * under now rather than how many sessions it holds (ties take turns).
 */
export class LeastConnectionsPolicy extends LeastLoadedPolicy {
  readonly name = 'least-connections';

  constructor() {
    super('inFlight');
  }
}
