import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testAffinity } from '../helpers/affinity.js';
import { startDemoNode } from '../../backends/demo/index.js';
import type { AffinityTable } from '../../src/affinity/index.js';
import { parseConfig, type Config, type ConfigInput } from '../../src/config/index.js';
import { DistributedMode } from '../../src/distributed/index.js';
import { createSilentLogger } from '../../src/log.js';
import { NodeRegistry } from '../../src/nodes/index.js';
import { SESSION_HEADER, sessionKeyOf } from '../../src/protocol.js';
import { RedisReplicaStore, redisConnectionOf } from '../../src/replication/index.js';
import { freePort } from '../helpers/free-port.js';
import {
  redisClusterAvailable,
  startRedisCluster,
  type RedisCluster,
  type RedisServer,
} from '../helpers/redis-server.js';
import { waitFor } from '../integration/harness.js';
import { replicaStoreContract } from './replica-store.contract.js';

const hasCluster = redisClusterAvailable();
const NODES = [
  { id: 'a', url: 'http://127.0.0.1:9001' },
  { id: 'b', url: 'http://127.0.0.1:9002' },
];

/** A config reaching Redis through `redis.cluster` (the rest defaulted). */
function clusterConfig(seeds: readonly string[], extra: Partial<ConfigInput> = {}): Config {
  return parseConfig({
    log: { level: 'silent' },
    replication: { store: 'redis' },
    redis: { url: 'redis://ignored', cluster: { nodes: [...seeds] } },
    nodes: NODES,
    ...extra,
  });
}

/** The master of `cluster` that holds `key`. */
async function serverHolding(cluster: RedisCluster, key: string): Promise<RedisServer> {
  for (const server of cluster.servers) {
    const raw = new Redis(server.port, '127.0.0.1');
    try {
      if ((await raw.exists(key).catch(() => 0)) === 1) return server;
    } finally {
      raw.disconnect();
    }
  }
  throw new Error(`no master holds ${key}`);
}

describe('redis.cluster in the config', () => {
  it('maps to ioredis Cluster options, with the user and password of redis.url', () => {
    const config = parseConfig({
      replication: { store: 'redis' },
      redis: { url: 'redis://app:p%40ss@ignored', cluster: { nodes: ['10.0.0.5:7000', 'redis-b:7001'] } },
      nodes: NODES,
    });
    expect(redisConnectionOf(config.redis)).toEqual({
      cluster: {
        nodes: [
          { host: '10.0.0.5', port: 7000 },
          { host: 'redis-b', port: 7001 },
        ],
        options: { redisOptions: { username: 'app', password: 'p@ss' } },
      },
    });
  });

  it.each([
    [{ sentinel: { name: 'main', nodes: ['a:1'] }, cluster: { nodes: ['b:2'] } }, 'redis.cluster'],
    [{ cluster: { nodes: [] } }, 'redis.cluster.nodes'],
    [{ cluster: { nodes: ['no-port'] } }, 'redis.cluster.nodes.0'],
    [{ cluster: { nodes: ['a:1'], seeds: ['b:2'] } }, 'redis.cluster.seeds'],
    [{ url: 'redis://host/2', cluster: { nodes: ['a:1'] } }, 'redis.url'],
  ])('refuses redis %j naming %s', (redis, key) => {
    expect(() => parseConfig({ redis, nodes: NODES })).toThrow(`${key}:`);
  });
});

describe.skipIf(!hasCluster)('RedisReplicaStore on a real Redis Cluster (3 masters)', () => {
  let cluster: RedisCluster;
  const agent = new Agent();
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  });
  afterAll(async () => {
    await cluster?.stop();
    agent.destroy();
  });

  /** A raw Cluster client for looking at what the store wrote. */
  async function rawCluster(): Promise<Cluster> {
    const raw = new Cluster([{ host: '127.0.0.1', port: cluster.servers[0]?.port ?? 0 }], {
      lazyConnect: true,
    });
    cleanups.push(() => raw.disconnect());
    await raw.connect();
    return raw;
  }

  // Each test on a hash tag of its own: its keys land on whichever master owns that slot.
  replicaStoreContract('RedisReplicaStore on a Redis Cluster', async ({ idleTimeoutMs }) => {
    const store = await RedisReplicaStore.connect({
      ...redisConnectionOf(clusterConfig(cluster.nodes).redis),
      keyPrefix: `{t${randomBytes(6).toString('hex')}}:`,
      idleTimeoutMs,
    });
    return { store, cleanup: () => store.close() };
  });

  it('connects from redis.cluster (one seed) and round-trips a write, read and transfer under {stickylb}:', async () => {
    // The last master as the only seed: ioredis finds the others, whichever owns the slot.
    const config = clusterConfig(cluster.nodes.slice(-1));
    const store = await RedisReplicaStore.connect({
      ...redisConnectionOf(config.redis),
      idleTimeoutMs: config.session.idleTimeout,
    });
    cleanups.push(() => store.close());
    const now = Date.now();
    expect(await store.write('a', [{ key: 'rt1', version: 1, data: { n: 1 }, lastAccessAt: now }])).toEqual([
      'ok',
    ]);
    expect(await store.read('rt1')).toMatchObject({ owner: 'a', version: 1, data: { n: 1 } });
    expect(await store.transfer('rt1', 'a', 'b')).toMatchObject({ owner: 'b', version: 1 });
    expect(await store.write('a', [{ key: 'rt1', version: 2, data: {}, lastAccessAt: now }])).toEqual([
      'not-owner',
    ]);
    expect(await store.keysOf('b')).toEqual(['rt1']);
    expect((await store.countsByOwner()).get('b')).toBe(1);
    const raw = await rawCluster();
    expect(await raw.hget('{stickylb}:s:rt1', 'owner')).toBe('b');
    expect(await raw.get('{stickylb}:epoch')).toBe(store.epoch);
  });

  it('loads its scripts again after SCRIPT FLUSH on every master (EVALSHA answered NOSCRIPT)', async () => {
    const store = await RedisReplicaStore.connect({
      ...redisConnectionOf(clusterConfig(cluster.nodes).redis),
      keyPrefix: `{t${randomBytes(6).toString('hex')}}:`,
      idleTimeoutMs: 60_000,
    });
    cleanups.push(() => store.close());
    const at = Date.now();
    await store.write('a', [{ key: 'sf1', version: 1, data: 1, lastAccessAt: at }]);
    for (const server of cluster.servers) {
      const raw = new Redis(server.port, '127.0.0.1');
      cleanups.push(() => raw.disconnect());
      await raw.script('FLUSH');
    }
    expect(
      await store.write('a', [
        { key: 'sf1', version: 2, data: 2, lastAccessAt: at },
        { key: 'sf2', version: 1, data: 1, lastAccessAt: at },
      ]),
    ).toEqual(['ok', 'ok']);
    expect(await store.transfer('sf1', 'a', 'b')).toMatchObject({ owner: 'b', version: 2 });
    expect(await store.keysOf('a')).toEqual(['sf2']);
  });

  it('delivers to a subscriber what is published on any master', async () => {
    const config = clusterConfig(cluster.nodes.slice(0, 1));
    const store = await RedisReplicaStore.connect({
      ...redisConnectionOf(config.redis),
      idleTimeoutMs: 60_000,
    });
    cleanups.push(() => store.close());
    const received: string[] = [];
    await store.subscribe('ps', (message) => received.push(message));
    // Straight to each master: a Cluster broadcasts PUBLISH to every node, whichever the
    // subscriber's connection is on.
    for (const server of cluster.servers) {
      const raw = new Redis(server.port, '127.0.0.1');
      cleanups.push(() => raw.disconnect());
      await raw.publish('{stickylb}:ps', `on ${server.port}`);
    }
    await store.publish('ps', 'through the store');
    await waitFor(() => received.length === cluster.servers.length + 1);
    expect(received.sort()).toEqual(
      [...cluster.servers.map((server) => `on ${server.port}`), 'through the store'].sort(),
    );
  });

  it('re-pins in one proxy the sessions another proxy published as moved (distributed mode)', async () => {
    const proxyFrom = async (config: Config): Promise<{ mode: DistributedMode; affinity: AffinityTable }> => {
      const registry = new NodeRegistry(
        config.nodes.map((node) => ({ ...node })),
        { routeOf: (id) => `r-${id}`, agent },
      );
      const affinity = testAffinity(registry, 1000);
      const mode = await DistributedMode.connect({
        redis: config.redis,
        idleTimeoutMs: config.session.idleTimeout,
        commandTimeoutMs: config.replication.timeout,
        affinity,
        registry,
        logger: createSilentLogger(),
        isMoving: () => false,
        moveAll: () => Promise.resolve(),
        onEvent: () => undefined,
      });
      cleanups.push(async () => {
        mode.stop();
        await mode.store.close();
      });
      return { mode, affinity };
    };
    // Each proxy seeded with a different master.
    const a = await proxyFrom(clusterConfig(cluster.nodes.slice(0, 1)));
    const b = await proxyFrom(clusterConfig(cluster.nodes.slice(1, 2)));
    b.affinity.record('pm1', 'a');
    a.mode.shared.publish([
      ['pm1', 'b'],
      ['pm2', 'b'],
    ]);
    await waitFor(() => b.affinity.nodeOf('pm2') === 'b');
    expect(b.affinity.movedNodeOf('pm1')).toBe('b');
    expect(b.mode.state()).toMatchObject({ state: 'up', moves: { adopted: 2 } });
  });

  it('stays unavailable while the master of its slot is down, though other masters answer PUBLISH', async () => {
    // A cluster of its own: this one loses a master.
    const own = await startRedisCluster();
    cleanups.push(() => own.stop());
    const store = await RedisReplicaStore.connect({
      ...redisConnectionOf(clusterConfig(own.nodes).redis),
      idleTimeoutMs: 60_000,
    });
    cleanups.push(() => store.close());
    const transitions: boolean[] = [];
    store.on('availability', (isAvailable) => transitions.push(isAvailable));
    await store.write('a', [{ key: 'down1', version: 1, data: 1, lastAccessAt: Date.now() }]);
    const holder = await serverHolding(own, '{stickylb}:s:down1');
    await holder.stop();

    await expect(store.read('down1')).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    // PUBLISH is answered by any master (and broadcast): it says nothing of the store's slot.
    await store.publish('ps', 'still broadcast');
    await expect(store.read('down1')).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    expect(store.isAvailable).toBe(false);
    expect(transitions).toEqual([false]);
  });

  it('lets a node started from redis.cluster replicate its writes to the cluster', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'stickylb-cluster-node-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = clusterConfig(cluster.nodes, {
      replication: { store: 'redis', secretFile: join(dir, 'replication-secret') },
      nodes: [
        { id: 'a', url: `http://127.0.0.1:${port}` },
        { id: 'b', url: 'http://127.0.0.1:1' },
      ],
    });
    const node = await startDemoNode({ config, nodeId: 'a', logger: createSilentLogger() });
    cleanups.push(() => node.close());
    const sessionId = 'c1ust3rs3ss10n.r1.m4c';
    const answer = await fetch(`${node.url}/api/counter`, {
      method: 'POST',
      headers: { [SESSION_HEADER]: sessionId },
    });
    expect(answer.status).toBe(200);
    // sync mode: acknowledged means already in Redis, read here through a store of its own.
    const store = await RedisReplicaStore.connect({
      ...redisConnectionOf(config.redis),
      idleTimeoutMs: 60_000,
    });
    cleanups.push(() => store.close());
    expect(await store.read(sessionKeyOf(sessionId))).toMatchObject({
      owner: 'a',
      data: { values: { count: 1 } },
    });
  });
});
