import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../src/config/index.js';
import { redisUnreachableError } from '../../src/distributed/index.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import { EXIT_WITH_PARENT_ENV } from '../../src/nodes/index.js';
import {
  ChannelReplicaTransport,
  RedisReplicaStore,
  redisConnectionOf,
  replicaEndpointOf,
  readSession,
  replicateSessions,
  Replicator,
  SessionRestorer,
  StoreReplicaTransport,
} from '../../src/replication/index.js';
import { loadSecret } from '../../src/secret-file.js';
import { SessionStore, type CompartmentData } from '../../src/session/index.js';
import { buildDemoApp } from './app.js';

/** A running demo node. */
export interface DemoNode {
  readonly app: FastifyInstance;
  readonly store: SessionStore<CompartmentData>;
  /** Sends every session change to the replica store. */
  readonly replicator: Replicator;
  /** Where it actually listens (the real port when the config said 0). */
  readonly url: string;
  /** Stops accepting connections, closes open ones, stops the store's sweeper. Idempotent. */
  close(): Promise<void>;
}

/** Options of `startDemoNode` and `runDemoNode`. */
export interface DemoNodeOptions {
  config: Config;
  /** Which of `config.nodes` to run. */
  nodeId: string;
  /** Defaults to a logger at `config.log.level`. */
  logger?: Logger;
}

/** Time a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

/** The host and port a node listens on, from its `nodes[].url`. */
function listenAddressOf(config: Config, nodeId: string): { host: string; port: number } {
  const index = config.nodes.findIndex((node) => node.id === nodeId);
  const node = config.nodes[index];
  if (node === undefined) {
    const known = config.nodes.map((candidate) => candidate.id).join(', ');
    throw new ConfigError('config', [`nodes: no node with id "${nodeId}" (known: ${known})`]);
  }
  const url = new URL(node.url);
  if (url.protocol !== 'http:') {
    throw new ConfigError('config', [
      `nodes.${index}.url: the demo node serves plain http, not ${url.protocol}`,
    ]);
  }
  // URL keeps IPv6 literals bracketed; listen() wants them bare.
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 80 : Number(url.port) };
}

/**
 * Starts one demo node as configured in `config.nodes`: its session store (sweeper running,
 * limits from `config.session`) and the demo app listening on the node's URL.
 */
export async function startDemoNode(options: DemoNodeOptions): Promise<DemoNode> {
  const { config, nodeId } = options;
  const { host, port } = listenAddressOf(config, nodeId);
  const logger = (options.logger ?? createLogger({ name: 'stickylb', level: config.log.level })).child({
    node: nodeId,
  });
  const store = new SessionStore<CompartmentData>({
    idleTimeoutMs: config.session.idleTimeout,
    maxSessions: config.session.maxSessions,
    activeWindowMs: config.session.activeWindow,
    sweepIntervalMs: config.session.sweepInterval,
  });
  const secret = loadSecret(config.replication);
  // `redis`: the node writes to Redis itself (no proxy hop); `memory`: the framed channel to
  // the proxy's replication listener (one connection, pipelined; see replica-channel-transport.ts).
  const redisStore =
    config.replication.store === 'redis'
      ? await RedisReplicaStore.connect({
          ...redisConnectionOf(config.redis),
          idleTimeoutMs: config.session.idleTimeout,
          commandTimeoutMs: config.replication.timeout,
          logger,
        }).catch((error: unknown) => {
          throw redisUnreachableError(config.redis, error);
        })
      : undefined;
  const transport =
    redisStore === undefined
      ? new ChannelReplicaTransport({
          endpoint: replicaEndpointOf(config),
          secret,
          timeoutMs: config.replication.timeout,
        })
      : new StoreReplicaTransport(redisStore);
  const replicator = new Replicator({
    nodeId,
    transport,
    mode: config.replication.mode,
    flushIntervalMs: config.replication.flushInterval,
    touchIntervalMs: config.replication.touchInterval,
    logger,
    // The proxy restarted and its memory replica store is empty: give it every session again.
    // A failed seed is retried by the replicator (each touch tick) until it succeeds.
    // The ids are listed now, each session read as its batch is sent: one destroyed meanwhile
    // is skipped, one written again goes as it is then (an old copy sent after its new life's
    // writes would refuse them as stale).
    onEpochChange: async () => {
      const ids = [...store.entries()].map((entry) => entry.id);
      await replicator.seed(ids, readSession(store));
    },
    // A failover moved the session away while this node was cut off: never serve a stale copy.
    onSessionMoved: (key) => store.delete(key),
  });
  // Touches and evictions replicated, and the plugin's write seam.
  const onWrite = replicateSessions(store, replicator, logger);
  // A session this process never had but the proxy still sends here: this node restarted
  // faster than the health checks noticed, and its replica holds the state.
  const restorer = new SessionRestorer(store, replicator);
  const app = await buildDemoApp({
    nodeId,
    store,
    logger,
    internalSecret: secret,
    // Replication lag (writes queued) and failures, for the dashboard and /metrics.
    // `redis`: whether this node reaches Redis (distributed mode), so an outage shows per node.
    nodeMetrics: () => ({
      replication: { ...replicator.stats(), restored: restorer.restored },
      ...(redisStore === undefined ? {} : { redis: redisStore.isAvailable ? 'up' : 'down' }),
    }),
    onWrite,
    restore: restorer.restore,
  });
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    await replicator.close();
    await redisStore?.close();
    throw error;
  }
  store.start();

  const address = app.server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ url }, 'node listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        await app.close();
        await replicator.close();
      } finally {
        store.stop();
        await redisStore?.close();
      }
      logger.info('node stopped');
    })());
  return { app, store, replicator, url, close };
}

/**
 * Runs a demo node as its own process (`stickylb backend --id ID`): starts it, and on
 * SIGTERM or SIGINT closes it gracefully; a second signal, or a shutdown slower than
 * SHUTDOWN_GRACE_MS, exits at once.
 */
export async function runDemoNode(options: DemoNodeOptions): Promise<DemoNode> {
  const logger = options.logger ?? createLogger({ name: 'stickylb', level: options.config.log.level });
  const node = await startDemoNode({ ...options, logger });
  let isShuttingDown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (isShuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    isShuttingDown = true;
    logger.info({ signal, node: options.nodeId }, 'node shutting down');
    setTimeout(() => {
      logger.error('node did not close in time: exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS).unref();
    node.close().then(
      () => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        // Closed cleanly; exit now rather than wait for handles such as the stdin watcher.
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'node failed to close');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (process.env[EXIT_WITH_PARENT_ENV] === '1') {
    // Started by `stickylb start`: its end (even by kill -9) closes our stdin.
    process.stdin.on('end', () => onSignal('SIGTERM'));
    process.stdin.on('error', () => onSignal('SIGTERM'));
    process.stdin.resume();
  }
  return node;
}
