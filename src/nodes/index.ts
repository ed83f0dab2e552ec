export { NodeRegistry, type NodeRegistryEvents } from './node-registry.js';
export { ProxyNode, type NodeState } from './proxy-node.js';
export { LocalNodes, isLocalNode } from './local-nodes.js';
