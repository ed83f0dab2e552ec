import type { RedisConnection } from './redis-replica-store.js';

/** The `redis` section of the config. */
export interface RedisSettings {
  url: string;
  sentinel?: { name: string; nodes: string[] } | undefined;
}

/**
 * Where the proxies and nodes find Redis: `redis.url` (standalone), or through Sentinel when
 * `redis.sentinel` is set (ioredis asks the sentinels for the master and follows a Sentinel
 * failover); `url` then gives only the password, user and database.
 */
export function redisConnectionOf(settings: RedisSettings): RedisConnection {
  if (settings.sentinel === undefined) return { url: settings.url };
  const url = new URL(settings.url);
  const db = Number(url.pathname.slice(1) || 0);
  return {
    redis: {
      name: settings.sentinel.name,
      sentinels: settings.sentinel.nodes.map((node) => {
        const colon = node.lastIndexOf(':');
        return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
      }),
      ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
      ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
      ...(Number.isSafeInteger(db) ? { db } : {}),
    },
  };
}
