import {
  Cluster,
  Redis,
  type ChainableCommander,
  type ClusterNode,
  type ClusterOptions,
  type RedisOptions,
} from 'ioredis';
import {
  COUNTS_SCRIPT,
  EPOCH_SCRIPT,
  OWNED_SCRIPT,
  REMOVE_SCRIPT,
  TOUCH_SCRIPT,
  TRANSFER_SCRIPT,
  WRITE_SCRIPT,
} from './redis-scripts.js';

/** Where the store's Redis is: a URL, ioredis options (standalone or Sentinel), or a Cluster. */
export type RedisConnection =
  { url: string } | { redis: RedisOptions } | { cluster: { nodes: ClusterNode[]; options?: ClusterOptions } };

/** The `redis` section of the config. */
export interface RedisSettings {
  url: string;
  sentinel?: { name: string; nodes: string[] } | undefined;
  cluster?: { nodes: string[] } | undefined;
}

/**
 * Where the proxies and nodes find Redis: `redis.url` (standalone), through Sentinel when
 * `redis.sentinel` is set (ioredis asks the sentinels for the master and follows a Sentinel
 * failover), or a Redis Cluster when `redis.cluster` is set (ioredis discovers the other
 * nodes and follows a Cluster failover; the store's keys then share one `{hash tag}`, see
 * RedisReplicaStore). With either, `url` gives only the user and password (and Sentinel's
 * database).
 */
export function redisConnectionOf(settings: RedisSettings): RedisConnection {
  const { sentinel, cluster } = settings;
  if (cluster !== undefined) {
    const credentials = credentialsOf(new URL(settings.url));
    return { cluster: { nodes: cluster.nodes.map(hostPortOf), options: { redisOptions: credentials } } };
  }
  if (sentinel === undefined) return { url: settings.url };
  const url = new URL(settings.url);
  const db = Number(url.pathname.slice(1) || 0);
  return {
    redis: {
      name: sentinel.name,
      sentinels: sentinel.nodes.map(hostPortOf),
      ...credentialsOf(url),
      ...(Number.isSafeInteger(db) ? { db } : {}),
    },
  };
}

/** The user and password of a Redis URL, as ioredis options. */
function credentialsOf(url: URL): { username?: string; password?: string } {
  return {
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
  };
}

/** `host:port` (validated by the config schema) as ioredis wants it. */
function hostPortOf(node: string): { host: string; port: number } {
  const colon = node.lastIndexOf(':');
  return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
}

/** Reconnect backoff: fast first tries, at most 1 s between tries during an outage. */
const retryStrategy = (times: number): number => Math.min(times * 50, 1000);

type Script = (...args: Array<string | number>) => Promise<unknown>;
/** The custom commands `defineCommand` adds (EVALSHA, EVAL on a new connection or NOSCRIPT). */
interface Scripts {
  slbWrite: Script;
  slbTouch: Script;
  slbRemove: Script;
  slbTransfer: Script;
  slbOwned: Script;
  slbCounts: Script;
  slbEpoch: Script;
}
export type Client = (Redis | Cluster) & Scripts;
export type Pipeline = ChainableCommander & {
  [K in keyof Scripts]: (...args: Array<string | number>) => Pipeline;
};

/**
 * The ioredis client of a RedisReplicaStore, not connected yet, with the store's scripts as
 * commands. Fail fast: no offline queue (a command while disconnected rejects at once), a
 * command in flight when the connection drops is resent at most once (every script is safe to
 * resend), and none waits longer than the command timeout.
 */
export function createRedisClient(connection: RedisConnection, commandTimeoutMs: number): Client {
  const common = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: commandTimeoutMs,
    retryStrategy,
  } satisfies RedisOptions;
  let client: Redis | Cluster;
  if ('cluster' in connection) {
    const { nodes, options: clusterOptions } = connection.cluster;
    client = new Cluster(nodes, {
      ...clusterOptions,
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
      redisOptions: {
        ...clusterOptions?.redisOptions,
        maxRetriesPerRequest: common.maxRetriesPerRequest,
        commandTimeout: common.commandTimeout,
        connectTimeout: common.connectTimeout,
      },
    });
  } else if ('redis' in connection) {
    client = new Redis({ ...connection.redis, ...common });
  } else {
    client = new Redis(connection.url, common);
  }
  client.defineCommand('slbWrite', { lua: WRITE_SCRIPT });
  client.defineCommand('slbTouch', { lua: TOUCH_SCRIPT });
  client.defineCommand('slbRemove', { lua: REMOVE_SCRIPT });
  client.defineCommand('slbTransfer', { lua: TRANSFER_SCRIPT, numberOfKeys: 4 });
  client.defineCommand('slbOwned', { lua: OWNED_SCRIPT });
  client.defineCommand('slbCounts', { lua: COUNTS_SCRIPT, numberOfKeys: 1 });
  client.defineCommand('slbEpoch', { lua: EPOCH_SCRIPT, numberOfKeys: 1 });
  return client as Client;
}
