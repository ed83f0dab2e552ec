import { isRedisSocketPath } from '../config/index.js';
import { ReplicaStoreError } from '../errors.js';
import type { RedisSettings } from '../replication/index.js';

/** What `GET /api/state` says of Redis in the distributed mode (`redis` field). */
export interface RedisState {
  state: 'up' | 'down';
  /** Where Redis is (`redisLocationOf`): `redis.url` without its password, or the Sentinel or Cluster nodes. */
  url: string;
  /** When the state last changed (ms since the epoch). */
  since: number;
  /** Outages seen since this proxy started. */
  outages: number;
  /** The error that started the latest outage. */
  lastError: string | null;
  /** Moves told to other proxies, adopted from them, and re-pinned by a resync after an outage. */
  moves: { published: number; adopted: number; publishFailures: number; resynced: number };
}

/** Up or down, since when, how often: changed only on transitions (one event and log line each). */
export class RedisStatus {
  readonly #url: string;
  #isUp = true;
  #since = Date.now();
  #outages = 0;
  #lastError: string | null = null;

  /** `location`: what `redisLocationOf` says of the config's `redis` section. */
  constructor(location: string) {
    this.#url = location;
  }

  get isUp(): boolean {
    return this.#isUp;
  }

  get url(): string {
    return this.#url;
  }

  /** Records a transition; false when `isUp` is the state already. */
  mark(isUp: boolean, error?: Error): boolean {
    if (isUp === this.#isUp) return false;
    this.#isUp = isUp;
    this.#since = Date.now();
    if (!isUp) {
      this.#outages++;
      this.#lastError = error?.message ?? 'unreachable';
    }
    return true;
  }

  snapshot(moves: RedisState['moves']): RedisState {
    return {
      state: this.#isUp ? 'up' : 'down',
      url: this.#url,
      since: this.#since,
      outages: this.#outages,
      lastError: this.#lastError,
      moves,
    };
  }
}

/**
 * A Redis URL fit for logs, metrics labels and the dashboard: the password replaced by `***`,
 * the query string and fragment dropped (ioredis takes `?password=` there too).
 */
export function redactUrl(url: string): string {
  // A Unix socket path: ioredis reads options (a password too) from its query string.
  if (isRedisSocketPath(url)) return url.replace(/[?#].*$/s, '');
  try {
    const parsed = new URL(url);
    if (parsed.password === '' && parsed.search === '' && parsed.hash === '') return url;
    if (parsed.password !== '') parsed.password = '***';
    parsed.search = '';
    parsed.hash = '';
    return parsed.toString();
  } catch {
    return 'redis://(unparsable url)';
  }
}

/**
 * Where Redis is, for errors, events, `/api/state` and the `stickylb_redis_up{url}` label:
 * `redis.url` without its password, or the nodes Redis is found through (with Sentinel or a
 * Cluster, `redis.url` holds only credentials and would name the wrong place).
 */
export function redisLocationOf(settings: RedisSettings): string {
  if (settings.cluster !== undefined) return `cluster (${settings.cluster.nodes.join(', ')})`;
  if (settings.sentinel !== undefined) {
    return `sentinel ${settings.sentinel.name} (${settings.sentinel.nodes.join(', ')})`;
  }
  return redactUrl(settings.url);
}

/** The start-up error of a proxy or node that cannot reach Redis: names the config key to fix. */
export function redisUnreachableError(settings: RedisSettings, error: unknown): ReplicaStoreError {
  const location = redisLocationOf(settings);
  const where =
    settings.cluster === undefined && settings.sentinel === undefined ? `redis.url ${location}` : location;
  const message = error instanceof Error ? error.message : String(error);
  return new ReplicaStoreError(`replica store: cannot reach Redis at ${where}: ${message}`, { cause: error });
}
