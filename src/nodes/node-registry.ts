import { EventEmitter } from 'node:events';
import type { Agent } from 'node:http';
import type { NodeConfig } from '../config/index.js';
import { ProxyNode, type NodeState } from './proxy-node.js';
import { closeUpstreamTarget } from './upstream-target.js';

export type NodeRegistryEvents = {
  /** A node's state (up / down / draining) changed. */
  state: [node: ProxyNode, previous: NodeState];
  /** Nodes were added or removed by a config reload. */
  changed: [added: ProxyNode[], removed: ProxyNode[]];
};

/**
 * Every node the proxy knows, by id and by route token, plus the array of nodes that can
 * take new sessions. That array is rebuilt when a state changes, never per request.
 */
export class NodeRegistry extends EventEmitter<NodeRegistryEvents> {
  readonly #byId = new Map<string, ProxyNode>();
  readonly #byRoute = new Map<string, ProxyNode>();
  #all: ProxyNode[] = [];
  #candidates: ProxyNode[] = [];
  readonly #routeOf: (nodeId: string) => string;
  readonly #agent: Agent;

  constructor(nodes: readonly NodeConfig[], options: { routeOf: (nodeId: string) => string; agent: Agent }) {
    super();
    this.#routeOf = options.routeOf;
    this.#agent = options.agent;
    for (const config of nodes) this.#add(config);
    this.#refresh();
  }

  /** Every node, in config order. */
  get all(): readonly ProxyNode[] {
    return this.#all;
  }

  /** Nodes that are up and not draining: where new sessions may go. */
  get candidates(): readonly ProxyNode[] {
    return this.#candidates;
  }

  get(id: string): ProxyNode | undefined {
    return this.#byId.get(id);
  }

  byRoute(route: string): ProxyNode | undefined {
    return this.#byRoute.get(route);
  }

  /** Records a health decision. Returns whether it changed anything. */
  setHealthy(id: string, isHealthy: boolean): boolean {
    const node = this.#byId.get(id);
    if (!node || node.isHealthy === isHealthy) return false;
    const previous = node.state;
    node.isHealthy = isHealthy;
    // Pooled sockets to a dead node would fail the next requests with an ambiguous reset (not
    // replayable for POST); a fresh connection is refused cleanly and replayed.
    if (!isHealthy) {
      node.renewUpstream();
      this.#dropIdleSockets(node);
    }
    this.#refresh();
    this.emit('state', node, previous);
    return true;
  }

  /** WebSocket upgrades still go through the shared agent (http-proxy): its idle sockets too. */
  #dropIdleSockets(node: ProxyNode): void {
    const { hostname, port } = new URL(node.url);
    const name = this.#agent.getName({ host: hostname, port: Number(port) || 80 });
    for (const socket of this.#agent.freeSockets[name] ?? []) socket.destroy();
  }

  /** Drains (no new sessions) or undrains a node. Returns whether it changed anything. */
  setDraining(id: string, isDraining: boolean): boolean {
    const node = this.#byId.get(id);
    if (!node || node.isDraining === isDraining) return false;
    const previous = node.state;
    node.isDraining = isDraining;
    this.#refresh();
    this.emit('state', node, previous);
    return true;
  }

  /**
   * Applies a reloaded node list: adds new nodes, removes missing ones, updates url and
   * weight of the rest. Counts and health of kept nodes are preserved; `moved` lists those
   * whose URL changed (another process there, most likely: the caller fails them over).
   */
  reconcile(nodes: readonly NodeConfig[]): { added: ProxyNode[]; removed: ProxyNode[]; moved: ProxyNode[] } {
    const wanted = new Set(nodes.map((node) => node.id));
    const removed = this.#all.filter((node) => !wanted.has(node.id));
    for (const node of removed) {
      this.#byId.delete(node.id);
      this.#byRoute.delete(node.route);
      closeUpstreamTarget(node.upstream);
    }
    const added: ProxyNode[] = [];
    const moved: ProxyNode[] = [];
    for (const config of nodes) {
      const existing = this.#byId.get(config.id);
      if (existing) {
        existing.weight = config.weight;
        if (existing.url !== config.url) {
          existing.setUrl(config.url, this.#agent);
          moved.push(existing);
        }
      } else {
        added.push(this.#add(config));
      }
    }
    this.#all = nodes.map((config) => this.#byId.get(config.id) as ProxyNode);
    this.#refresh();
    if (added.length || removed.length) this.emit('changed', added, removed);
    return { added, removed, moved };
  }

  /** Closes every node's connection pool (shutdown): requests in flight finish first. */
  close(): void {
    for (const node of this.#all) closeUpstreamTarget(node.upstream);
  }

  #add(config: NodeConfig): ProxyNode {
    const node = new ProxyNode(config, this.#routeOf(config.id), this.#agent);
    this.#byId.set(node.id, node);
    this.#byRoute.set(node.route, node);
    this.#all.push(node);
    return node;
  }

  #refresh(): void {
    this.#candidates = this.#all.filter((node) => node.isHealthy && !node.isDraining);
  }
}
