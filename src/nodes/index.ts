export { NodeRegistry, type NodeRegistryEvents } from './node-registry.js';
export { ProxyNode, type NodeState } from './proxy-node.js';
export { LocalNodes, isLocalNode, EXIT_WITH_PARENT_ENV } from './local-nodes.js';
export { closeUpstreamTarget, upstreamTargetOf, type UpstreamTarget } from './upstream-target.js';
export { isReusedSocketError } from './upstream-pool.js';
export { RawPool, sweepIdleConnections, type PooledConnection } from './raw-pool.js';
