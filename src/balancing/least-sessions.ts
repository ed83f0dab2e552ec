import { LeastLoadedPolicy } from './least-loaded.js';

/** The default policy: the node with the fewest sessions per unit of weight (ties take turns). */
export class LeastSessionsPolicy extends LeastLoadedPolicy {
  readonly name = 'least-sessions';

  constructor() {
    super('sessions');
  }
}
