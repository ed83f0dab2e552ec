import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { RedisReplicaStore } from '../../src/replication/index.js';
import { StickyLb } from '../../src/stickylb.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { freePort, startCluster, waitFor, type Client, type Cluster } from './harness.js';
import { busiest, seedSessions } from './seed-sessions.js';

const hasRedis = redisServerAvailable();

/** The store key of a session id (its random part). */
const keyOf = (client: Client): string => (client.sessionId as string).split('.')[0] as string;

/** Every session's next POST answers 200 with its counter one higher, not on `gone`. */
async function expectCountersKept(
  sessions: Map<Client, { node: string; count: number }>,
  gone: string,
): Promise<void> {
  for (const [client, before] of sessions) {
    const { status, json } = await client.request('POST', '/api/counter');
    expect(status).toBe(200);
    expect(json.node).not.toBe(gone);
    expect(json.count).toBe(before.count + 1);
    sessions.set(client, { node: json.node, count: json.count });
  }
}

describe.skipIf(!hasRedis)('replication.store: redis (real redis-server, one proxy)', () => {
  let redis: RedisServer;
  let cluster: Cluster | undefined;
  let reader: RedisReplicaStore;

  beforeAll(async () => {
    redis = await startRedisServer();
    reader = await RedisReplicaStore.connect({ url: redis.url, idleTimeoutMs: 60_000 });
    cluster = await startCluster({
      nodeCount: 3,
      config: { replication: { store: 'redis' }, redis: { url: redis.url } },
    });
  });
  afterAll(async () => {
    await cluster?.close();
    await reader?.close();
    await redis?.stop();
  });

  it('starts no replication listener; the nodes write every session to Redis themselves', async () => {
    const c = cluster as Cluster;
    expect(c.lb.replicationAddress).toBeUndefined();
    const sessions = await seedSessions(c, 12, 2);
    const keys = [...sessions.keys()].map(keyOf);
    // Sync replication: acknowledged writes are in Redis already, owned by the serving node.
    const records = await reader.readMany(keys);
    [...sessions.values()].forEach(({ node }, i) => {
      expect(records[i]?.owner).toBe(node);
      expect(records[i]?.data).toBeDefined();
    });
    expect(c.lb.replicas.epoch).toBe(reader.epoch);
  });

  it('kill -9 the busiest node: every session keeps its counter (state read from Redis)', async () => {
    const c = cluster as Cluster;
    const sessions = await seedSessions(c, 24, 3);
    const victim = busiest(sessions);
    await c.nodes.find((node) => node.id === victim)?.kill('SIGKILL');
    await expectCountersKept(sessions, victim);
    // The moved sessions are owned by their new nodes in Redis.
    const records = await reader.readMany([...sessions.keys()].map(keyOf));
    [...sessions.values()].forEach(({ node }, i) => expect(records[i]?.owner).toBe(node));
    await c.nodes.find((node) => node.id === victim)?.restart();
    await waitFor(() => c.lb.registry.all.every((node) => node.isHealthy));
  });

  it('proxy restart: the replicas are still in Redis (no re-seed), a later failover keeps every counter', async () => {
    const c = cluster as Cluster;
    const sessions = await seedSessions(c, 18, 2);
    const keys = [...sessions.keys()].map(keyOf);
    const epoch = c.lb.replicas.epoch;
    const config = c.lb.config;
    const port = c.lb.proxyAddress?.port as number;
    await c.lb.close(1000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const lb = new StickyLb(
      parseConfig({ ...config, proxy: { ...config.proxy, listen: { host: '127.0.0.1', port } } }),
      createSilentLogger(),
    );
    await lb.listen();
    c.lb = lb;
    // Same data in Redis, same epoch: the nodes have nothing to re-send, every replica is there now.
    expect(lb.replicas.epoch).toBe(epoch);
    expect((await lb.replicas.readMany(keys)).every((record) => record !== undefined)).toBe(true);
    await waitFor(() => lb.registry.all.every((node) => node.isHealthy));
    const victim = busiest(sessions);
    await c.nodes.find((node) => node.id === victim)?.kill('SIGKILL');
    await expectCountersKept(sessions, victim);
  });
});

describe.skipIf(!hasRedis)(
  'replication.store: redis, a node restarted before the health checks notice',
  () => {
    let redis: RedisServer | undefined;
    let cluster: Cluster | undefined;
    afterAll(async () => {
      await cluster?.close();
      await redis?.stop();
    });

    it('restores each session from Redis on its next request there, counter intact', async () => {
      redis = await startRedisServer();
      // 5 failed checks 2 s apart to be marked down: the restart (about a second) goes unnoticed.
      cluster = await startCluster({
        nodeCount: 2,
        config: {
          replication: { store: 'redis' },
          redis: { url: redis.url },
          health: { interval: '2s', timeout: '1s', fall: 5 },
        },
      });
      const c = cluster;
      const sessions = await seedSessions(c, 12, 3);
      const victim = busiest(sessions);
      await c.nodes.find((node) => node.id === victim)?.restart();
      for (const [client, before] of sessions) {
        const { status, json } = await client.request('POST', '/api/counter');
        expect(status).toBe(200);
        expect(json).toMatchObject({ node: before.node, count: before.count + 1 });
      }
      expect(c.lb.registry.get(victim)?.isHealthy).toBe(true);
    });
  },
);

describe.skipIf(!hasRedis)('replication.store: redis, Redis unreachable', () => {
  it('fails start-up with an error naming redis.url', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const lb = new StickyLb(
      parseConfig({
        proxy: { workers: 1, listen: { host: '127.0.0.1', port: 0 } },
        admin: { listen: { host: '127.0.0.1', port: 0 } },
        replication: { store: 'redis', secret: 'x'.repeat(32) },
        session: { secret: 'y'.repeat(32) },
        redis: { url },
        log: { level: 'silent' },
        nodes: [{ id: 'node-1', url: 'http://127.0.0.1:1' }],
      }),
      createSilentLogger(),
    );
    await expect(lb.listen()).rejects.toThrow(`redis.url ${url}`);
    await lb.close(100);
  });
});
