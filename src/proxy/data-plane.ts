import type { Agent } from 'node:http';
import { SessionCookie, type AffinityView, type SessionIdCodec } from '../affinity/index.js';
import { createBalancingPolicy } from '../balancing/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import type { NodeRegistry, ProxyNode } from '../nodes/index.js';
import type { SessionStore } from '../session/index.js';
import { ProxyServer } from './proxy-server.js';
import { Router } from './router.js';
import { UpstreamAgent } from './upstream-agent.js';

/**
 * The keep-alive agent toward the nodes for WebSocket upgrades (http-proxy) and the proxy's
 * own calls (node metrics, session installs); plain requests use each node's undici pool
 * (src/nodes/upstream-pool.ts). LIFO reuses the warmest socket; idle sockets close after
 * 60 s, before the nodes' 65 s keep-alive timeout can close one under us. A pooled socket
 * the node writes to unasked is closed (UpstreamAgent).
 */
export function createUpstreamAgent(): Agent {
  return new UpstreamAgent({
    keepAlive: true,
    maxSockets: 512,
    maxFreeSockets: 256,
    scheduling: 'lifo',
    timeout: 60_000,
  });
}

/** The request path: router and proxy server, built the same way in one process or in each worker. */
export function createDataPlane(options: {
  config: Config;
  codec: SessionIdCodec;
  registry: NodeRegistry;
  affinity: AffinityView;
  logger: Logger;
  clientIps?: SessionStore<string> | undefined;
  onNodeFailure: (node: ProxyNode, error: Error) => void;
  moveSession: (key: string, fromNodeId: string) => Promise<ProxyNode>;
  mayReplay: (key: string) => Promise<boolean>;
}): { router: Router; proxy: ProxyServer } {
  const { config } = options;
  const cookie = new SessionCookie({
    cookieName: config.session.cookieName,
    urlParam: config.session.urlParam,
    secure: config.session.cookieSecure,
  });
  const router = new Router({
    codec: options.codec,
    cookie,
    registry: options.registry,
    affinity: options.affinity,
    policy: createBalancingPolicy(config.balancing.policy),
    clientIps: options.clientIps,
  });
  const proxy = new ProxyServer({
    config: config.proxy,
    router,
    cookie,
    affinity: options.affinity,
    logger: options.logger.child({ component: 'proxy' }),
    onNodeFailure: options.onNodeFailure,
    moveSession: options.moveSession,
    mayReplay: options.mayReplay,
  });
  return { router, proxy };
}
