import { z } from 'zod';
import { formatDuration, parseDuration } from './duration.js';

/*
 * One schema gives both the validator and the TypeScript type (`Config`). Every object is
 * strict: an unknown key is an error, because a misspelt key silently falling back to its
 * default is how a production config lies to its operator. Defaults live here and only here.
 */

/**
 * The longest timer Node runs as asked: past 2^31 - 1 ms (~24.8 days) `setTimeout` warns and
 * fires after 1 ms, so a longer interval or timeout would run its loop every millisecond.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Durations only ever compared with timestamps (idle expiry), never a timer: up to a year. */
const MAX_AGE_MS = 365 * 24 * 3_600_000;

/** A duration in ms, written as integer ms or `"500ms"`, `"2s"`, `"30m"`. */
function duration(min = 0, max = MAX_TIMER_MS) {
  return z.unknown().transform((input, ctx): number => {
    const ms = parseDuration(input);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration like "500ms", "2s", "30m" or integer ms' });
      return z.NEVER;
    }
    if (ms < min) {
      ctx.addIssue({ code: 'custom', message: `must be ≥ ${min}ms` });
      return z.NEVER;
    }
    if (ms > max) {
      const limit =
        max === MAX_TIMER_MS ? `${max}ms (~24.8 days, Node's longest timer)` : formatDuration(max);
      ctx.addIssue({ code: 'custom', message: `must be ≤ ${limit}` });
      return z.NEVER;
    }
    return ms;
  });
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return z
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(min, { error: `must be ≥ ${min}` })
    .max(max, { error: `must be ≤ ${max}` });
}

const host = z.string({ error: 'must be a host name or address' }).min(1, { error: 'must not be empty' });
const port = integer(0, 65535);
const listen = (defaultPort: number) =>
  z.strictObject({ host: host.default('127.0.0.1'), port: port.default(defaultPort) }).prefault({});

const httpUrl = z.string({ error: 'must be a URL' }).refine(
  (value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && !url.search;
    } catch {
      return false;
    }
  },
  { error: 'must be an http(s) URL with no path, like http://127.0.0.1:9001' },
);

/**
 * `redis.url`: checked here because a URL that does not parse would otherwise throw later
 * (`new URL` in redis-connection.ts), and Node puts the whole input, password included, on
 * that error; the message never echoes the value.
 */
/**
 * A Unix socket path, which ioredis takes as it is (standalone only: see the redis object's
 * check). Not `//…`: ioredis reads that as a URL without a scheme, credentials and all.
 */
export function isRedisSocketPath(value: string): boolean {
  return /^\/(?!\/)/.test(value);
}

const redisUrl = z.string({ error: 'must be a URL' }).refine(
  (value) => {
    if (isRedisSocketPath(value)) return true;
    try {
      const url = new URL(value);
      return url.protocol === 'redis:' || url.protocol === 'rediss:';
    } catch {
      return false;
    }
  },
  { error: 'must be a redis:// or rediss:// URL, like redis://127.0.0.1:6379, or a Unix socket path' },
);

/** A Sentinel or Cluster node: `host:port` (no IPv6 literal). */
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, { error: 'must be host:port' });

/** The path of a URL (a Redis URL's `/db`); '' when it does not parse. */
function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}

/** Secrets are compared in constant time; a short one is guessable. */
const secret = z.string({ error: 'must be a string' }).min(16, { error: 'must be at least 16 characters' });

/** Node ids: what the replication protocol and the admin API accept too. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

const nodeSchema = z.strictObject({
  id: z
    .string({ error: 'must be a string' })
    .regex(NODE_ID_PATTERN, { error: 'must be 1-64 letters, digits, "-" or "_"' }),
  url: httpUrl,
  weight: integer(1, 1000).default(1),
});

export const policies = ['least-sessions', 'round-robin', 'least-connections', 'random-two-choices'] as const;

export const configSchema = z
  .strictObject({
    proxy: z
      .strictObject({
        listen: listen(8080),
        /**
         * Proxy worker processes: `auto` = one per core, or a number. 1 runs the data plane in
         * the control-plane process itself (no IPC).
         */
        workers: z
          .union([z.literal('auto'), integer(1, 256)], {
            error: 'must be "auto" or a whole number from 1 to 256',
          })
          .default('auto'),
        /** Header names are trusted for X-Forwarded-* only from these addresses. */
        trustedProxies: z.array(z.string()).default([]),
        /** Pin clients that carry no session id by client IP (off: breaks behind NAT). */
        clientIpAffinity: z.boolean({ error: 'must be true or false' }).default(false),
        /** Bodies up to this size are buffered so a refused request can be retried on another node. */
        maxBodyBytes: integer(0).default(1_048_576),
        maxHeaderBytes: integer(1024, 1_048_576).default(16_384),
        /** Request header lines allowed (HAProxy's tune.http.maxhdr is 101); more get 431. */
        maxHeaderCount: integer(1, 10_000).default(100),
        maxConnections: integer(1).default(10_000),
        timeouts: z
          .strictObject({
            /** Time a client has to send its request headers (slowloris). */
            headers: duration(1).default(10_000),
            /** Time a client has to send a whole request. */
            request: duration(1).default(60_000),
            /** Idle keep-alive time of a client connection. */
            idle: duration(1).default(5_000),
            /** Time a node has to answer a proxied request. */
            upstream: duration(1).default(30_000),
          })
          .prefault({}),
      })
      .prefault({}),
    admin: z
      .strictObject({
        listen: listen(8081),
        /** Required when admin.listen.host is not a loopback address. */
        token: secret.optional(),
      })
      .prefault({}),
    session: z
      .strictObject({
        cookieName: z
          .string()
          .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'must be a cookie name token' })
          .default('SESSIONID'),
        urlParam: z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/, { error: 'must be a URL parameter name' })
          .default('sessionId'),
        idleTimeout: duration(1000, MAX_AGE_MS).default(30 * 60_000),
        /** Add `Secure` to the cookie (set it when clients reach the proxy over TLS). */
        cookieSecure: z.boolean({ error: 'must be true or false' }).default(false),
        maxSessions: integer(1).default(1_000_000),
        sweepInterval: duration(10).default(1000),
        /** A session accessed within this window counts as active (not evictable). */
        activeWindow: duration(0, MAX_AGE_MS).default(60_000),
        /** Key that signs session ids. Unset: generated once and kept in `secretFile`. */
        secret: secret.optional(),
        secretFile: z.string().default('.stickylb/secret'),
      })
      .prefault({}),
    balancing: z
      .strictObject({
        policy: z
          .enum(policies, { error: `must be one of ${policies.join(', ')}` })
          .default('least-sessions'),
        /** `POST /api/rebalance` moves sessions until every node is within this fraction of its fair share. */
        rebalanceSpread: z
          .number()
          .min(0, { error: 'must be ≥ 0' })
          .max(10, { error: 'must be ≤ 10' })
          .default(0.2),
      })
      .prefault({}),
    health: z
      .strictObject({
        interval: duration(10).default(1000),
        timeout: duration(1).default(500),
        rise: integer(1).default(2),
        fall: integer(1).default(2),
        path: z.string().startsWith('/', { error: 'must start with /' }).default('/health'),
      })
      .prefault({}),
    replication: z
      .strictObject({
        store: z.enum(['memory', 'redis'], { error: 'must be memory or redis' }).default('memory'),
        mode: z.enum(['sync', 'async'], { error: 'must be sync or async' }).default('sync'),
        /** How often `async` mode flushes its batch: the window of writes a crash can lose. */
        flushInterval: duration(1).default(10),
        /** Where the proxy hosts the `memory` replica store for the nodes to write to. */
        listen: listen(8082),
        /** Shared secret of the replication endpoints. Unset: generated once and kept in `secretFile`. */
        secret: secret.optional(),
        secretFile: z.string().default('.stickylb/replication-secret'),
        /** Time a node waits for the replica store before failing the request. */
        timeout: duration(1).default(5000),
        /** How often nodes send the keys of sessions that were only read (idle expiry in step). */
        touchInterval: duration(10).default(1000),
      })
      .prefault({}),
    redis: z
      .strictObject({
        url: redisUrl.default('redis://127.0.0.1:6379'),
        /**
         * Redis Sentinel: the master's name and the sentinels (`host:port`) to ask for it;
         * `url` then gives only the password and the database.
         */
        sentinel: z
          .strictObject({
            name: z.string().min(1, { error: 'must not be empty' }),
            nodes: z.array(hostPort).min(1, { error: 'must list at least one sentinel' }),
          })
          .optional(),
        /**
         * Redis Cluster: some of its nodes (`host:port`; ioredis discovers the rest and follows
         * a Cluster failover); `url` then gives only the user and password.
         */
        cluster: z
          .strictObject({
            nodes: z.array(hostPort).min(1, { error: 'must list at least one cluster node' }),
          })
          .optional(),
      })
      .prefault({})
      .superRefine((redis, ctx) => {
        if (redis.sentinel !== undefined && redis.cluster !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['cluster'],
            message: 'cannot be set together with redis.sentinel: Redis is found through one of them',
          });
        }
        if ((redis.sentinel !== undefined || redis.cluster !== undefined) && isRedisSocketPath(redis.url)) {
          ctx.addIssue({
            code: 'custom',
            path: ['url'],
            message:
              'must be a redis:// URL with redis.sentinel or redis.cluster (only its user and password are used)',
          });
        }
        if (redis.cluster !== undefined && !['', '/', '/0'].includes(pathOf(redis.url))) {
          ctx.addIssue({ code: 'custom', path: ['url'], message: 'a Redis Cluster has only database 0' });
        }
      }),
    log: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      })
      .prefault({}),
    nodes: z.array(nodeSchema).min(1, { error: 'must list at least one node' }),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.nodes.forEach((node, index) => {
      if (seen.has(node.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['nodes', index, 'id'],
          message: `duplicate node id "${node.id}"`,
        });
      }
      seen.add(node.id);
    });
    if (config.health.timeout >= config.health.interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['health', 'timeout'],
        message: 'must be shorter than health.interval',
      });
    }
  });

/** The validated, defaulted config; durations are in milliseconds. */
export type Config = z.output<typeof configSchema>;
/** What a config file may contain. */
export type ConfigInput = z.input<typeof configSchema>;
export type NodeConfig = Config['nodes'][number];
export type BalancingPolicyName = (typeof policies)[number];
