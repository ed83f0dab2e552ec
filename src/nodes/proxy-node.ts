import type { Agent } from 'node:http';
import type { BalancedNode } from '../balancing/index.js';
import type { NodeConfig } from '../config/index.js';
import { closeUpstreamTarget, upstreamTargetOf, type UpstreamTarget } from './upstream-target.js';

/** What the admin API calls a node's state. */
export type NodeState = 'up' | 'down' | 'draining';

/** A node as the proxy sees it at run time: config, route token, health, counts. */
export class ProxyNode implements BalancedNode {
  readonly id: string;
  url: string;
  weight: number;
  /** Opaque token that session ids routed here carry. */
  readonly route: string;
  /** Options object handed to http-proxy for every WebSocket upgrade to this node (built once). */
  proxyOptions: { target: string; agent: Agent };
  /** Where the request path sends this node's requests (parsed once). */
  upstream: UpstreamTarget;
  /** Health as last decided by the health checker; starts up so a fresh proxy serves at once. */
  isHealthy = true;
  /** Drained nodes take no new sessions but keep serving the ones they hold. */
  isDraining = false;
  /** Live sessions whose primary is this node (kept by the affinity table). */
  sessions = 0;
  /**
   * Sessions on their way here: moves that picked this node and have not re-pinned them yet
   * (kept by the failover manager). Balancing counts them with `sessions`.
   */
  incoming = 0;
  /** Requests in flight to this node right now. */
  inFlight = 0;
  /** Requests answered, by status class, since start. */
  requests = 0;

  constructor(config: NodeConfig, route: string, agent: Agent) {
    this.id = config.id;
    this.url = config.url;
    this.weight = config.weight;
    this.route = route;
    this.proxyOptions = { target: config.url, agent };
    this.upstream = upstreamTargetOf(config.url);
  }

  /** Points the node at a new URL (reload). */
  setUrl(url: string, agent: Agent): void {
    this.url = url;
    this.proxyOptions = { target: url, agent };
    this.renewUpstream();
  }

  /**
   * Replaces the node's connection pool with a new one (its URL changed, or it went down:
   * pooled connections to a dead node would fail the next requests with an ambiguous reset,
   * not replayable for a POST, where a new connection is refused cleanly and replayed).
   * Requests in flight on the old pool finish.
   */
  renewUpstream(): void {
    const previous = this.upstream;
    this.upstream = upstreamTargetOf(this.url);
    closeUpstreamTarget(previous);
  }

  get state(): NodeState {
    if (!this.isHealthy) return 'down';
    return this.isDraining ? 'draining' : 'up';
  }

  /** Can this node take requests of sessions it already holds? */
  get isServing(): boolean {
    return this.isHealthy;
  }
}
