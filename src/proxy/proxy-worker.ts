import type { AddressInfo } from 'node:net';
import { NodeTraffic } from '../admin/node-traffic.js';
import { SessionIdCodec } from '../affinity/index.js';
import type { Config } from '../config/index.js';
import { NoHealthyNodeError, StickyError, UpstreamTimeoutError } from '../errors.js';
import { failureEvidence } from './upstream-errors.js';
import { createLogger } from '../log.js';
import { NodeRegistry, type ProxyNode } from '../nodes/index.js';
import { createDataPlane, createUpstreamAgent } from './data-plane.js';
import {
  STATS_INTERVAL_MS,
  type NodeCounters,
  type NodeSnapshot,
  type PrimaryMessage,
  type WorkerMessage,
} from './ipc.js';
import { WorkerAffinity } from './worker-affinity.js';

/**
 * A proxy worker process (node:cluster): the data plane only. It is told the config, node
 * state and moved sessions by the control plane (the primary), routes and proxies on its
 * own, and reports up what it saw. Started by WorkerPool; never run by hand.
 */
function send(message: WorkerMessage): void {
  // A callback, so a primary that just died fails the write quietly (the 'disconnect' handler
  // then ends this worker) instead of raising an 'error' event.
  if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
}

function applyNodes(registry: NodeRegistry, nodes: readonly NodeSnapshot[]): void {
  for (const snapshot of nodes) {
    const node = registry.get(snapshot.id);
    if (node === undefined) continue;
    registry.setHealthy(snapshot.id, snapshot.isHealthy);
    registry.setDraining(snapshot.id, snapshot.isDraining);
    node.sessions = snapshot.sessions;
    node.incoming = snapshot.incoming;
  }
}

async function start(init: Extract<PrimaryMessage, { t: 'init' }>): Promise<void> {
  let config: Config = init.config;
  const logger = createLogger({ name: `stickylb:worker-${process.pid}`, level: config.log.level });
  const codec = new SessionIdCodec(Buffer.from(init.sessionSecret));
  const agent = createUpstreamAgent();
  const registry = new NodeRegistry(config.nodes, { routeOf: (id) => codec.routeOf(id), agent });
  applyNodes(registry, init.nodes);
  const affinity = new WorkerAffinity(send, registry);
  affinity.applyMoved(init.moved);

  let nextCallId = 1;
  /** Requests to the control plane (rare paths) awaiting its answer, by id. */
  const pendingCalls = new Map<number, (reply: PrimaryMessage | undefined) => void>();
  /**
   * Asks the control plane and hands its answer to `onReply`, or `undefined` once the upstream
   * timeout has passed: an answer can be lost (a primary busy for that long, or dying), and the
   * request waiting on it must still end.
   */
  function call(
    message: Extract<WorkerMessage, { id: number }>,
    onReply: (reply?: PrimaryMessage) => void,
  ): void {
    const timer = setTimeout(() => {
      pendingCalls.delete(message.id);
      onReply(undefined);
    }, config.proxy.timeouts.upstream);
    pendingCalls.set(message.id, (reply) => {
      clearTimeout(timer);
      pendingCalls.delete(message.id);
      onReply(reply);
    });
    send(message);
  }
  const { router, proxy } = createDataPlane({
    config,
    codec,
    registry,
    affinity,
    logger,
    onNodeFailure: (node, error) => {
      // Refused: stop routing to it here at once. Either way the control plane decides
      // (a suspect node is probed first) and tells every worker.
      const evidence = failureEvidence(error);
      if (evidence === 'conclusive') registry.setHealthy(node.id, false);
      send({ t: 'failure', nodeId: node.id, reason: error.message, evidence });
    },
    moveSession: (key, from) =>
      new Promise<ProxyNode>((resolve, reject) => {
        call({ t: 'move', id: nextCallId++, key, from }, (reply) => {
          if (reply?.t !== 'move-reply') {
            reject(new UpstreamTimeoutError(config.proxy.timeouts.upstream, 'session move did not finish'));
            return;
          }
          const node = reply.nodeId === undefined ? undefined : registry.get(reply.nodeId);
          if (node !== undefined) resolve(node);
          else if (reply.error === undefined || reply.error.code === 'SLB_NO_HEALTHY_NODE')
            reject(new NoHealthyNodeError());
          else reject(new StickyError(reply.error.code, 503, reply.error.message));
        });
      }),
    mayReplay: (key) =>
      new Promise<boolean>((resolve) => {
        // Our batch of versions seen goes first, so the control plane compares with the latest.
        affinity.flush();
        // No answer in time: not proven safe.
        call({ t: 'replay', id: nextCallId++, key }, (reply) =>
          resolve(reply?.t === 'replay-reply' && reply.isSafe),
        );
      }),
  });

  process.on('message', (message: PrimaryMessage) => {
    switch (message.t) {
      case 'nodes':
        applyNodes(registry, message.nodes);
        break;
      case 'moved':
        affinity.applyMoved(message.entries);
        break;
      case 'move-reply':
      case 'replay-reply':
        pendingCalls.get(message.id)?.(message);
        break;
      case 'flush-used':
        // IPC keeps order: the primary reads our batch before this answer.
        affinity.flush();
        send({ t: 'used-flushed', id: message.id });
        break;
      case 'reload':
        config = message.config;
        registry.reconcile(config.nodes);
        proxy.reconfigure(config.proxy);
        break;
      case 'shutdown':
        void shutdown(message.graceMs);
        break;
      default:
        break;
    }
  });

  // Rates and latency per node, summed with the other workers' by the control plane.
  const traffic = new NodeTraffic();
  proxy.onResponse = (node, statusCode, startedAtMs) => traffic.record(node.id, statusCode, startedAtMs);
  const statsTimer = setInterval(() => {
    const nodes: NodeCounters = {};
    for (const node of registry.all) nodes[node.id] = [node.inFlight, node.requests];
    send({
      t: 'stats',
      counters: { ...proxy.counters, rejectedIds: router.counters.rejectedIds },
      nodes,
      traffic: traffic.snapshot(),
    });
  }, STATS_INTERVAL_MS);
  statsTimer.unref();

  let isShuttingDown = false;
  async function shutdown(graceMs: number): Promise<void> {
    if (isShuttingDown) return;
    isShuttingDown = true;
    await proxy.close(graceMs);
    affinity.flush();
    clearInterval(statsTimer);
    registry.close();
    agent.destroy();
    process.disconnect?.();
    process.exit(0);
  }
  // The primary is gone: nobody can route our failovers or count our sessions.
  process.on('disconnect', () => {
    if (!isShuttingDown) process.exit(1);
  });
  // Ctrl-C signals the whole process group: the primary coordinates that shutdown. A SIGTERM
  // aimed at this worker alone stops it gracefully (the primary starts a replacement).
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => void shutdown(10_000));

  const address: AddressInfo = await proxy.listen(config.proxy.listen.port, config.proxy.listen.host);
  send({ t: 'listening', port: address.port });
}

/**
 * Waits for `init`, whatever comes before it: a message sent before the primary saw `ready`
 * (a broadcast racing the fork) must not use up the only listener, or this worker never starts.
 */
function onInit(message: PrimaryMessage): void {
  if (message.t !== 'init') return;
  process.off('message', onInit);
  start(message).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
process.on('message', onInit);
// Listening for 'init' now: the primary may send it.
send({ t: 'ready' });
