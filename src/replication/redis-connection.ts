import type { RedisConnection } from './redis-replica-store.js';

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
