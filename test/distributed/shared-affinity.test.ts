import { Agent } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testAffinity, testRegistry } from '../helpers/affinity.js';
import type { AffinityTable } from '../../src/affinity/index.js';
import { SharedAffinity } from '../../src/distributed/index.js';
import { createSilentLogger } from '../../src/log.js';
import type { NodeRegistry } from '../../src/nodes/index.js';
import { RedisReplicaStore } from '../../src/replication/index.js';
import { waitFor } from '../integration/harness.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const hasRedis = redisServerAvailable();
const agent = new Agent();

/** One proxy's side: its own table, registry and Redis connection, on the shared Redis. */
interface Proxy {
  affinity: AffinityTable;
  registry: NodeRegistry;
  store: RedisReplicaStore;
  shared: SharedAffinity;
}

async function proxyOn(url: string, moving = new Set<string>()): Promise<Proxy> {
  const registry = testRegistry(['a', 'b', 'c'], agent);
  const affinity = testAffinity(registry, 1000);
  const store = await RedisReplicaStore.connect({ url, idleTimeoutMs: 60_000 });
  const shared = new SharedAffinity({
    store,
    affinity,
    registry,
    logger: createSilentLogger(),
    isMoving: (key) => moving.has(key),
    peerMoveWaitMs: 200,
  });
  await shared.start();
  return { affinity, registry, store, shared };
}

const write = (version: number) => ({ version, data: { n: version }, lastAccessAt: Date.now() });

describe.skipIf(!hasRedis)('SharedAffinity (real redis-server)', () => {
  let redis: RedisServer;
  const proxies: Proxy[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    for (const proxy of proxies) {
      proxy.shared.stop();
      await proxy.store.close();
    }
    await redis?.stop();
    agent.destroy();
  });
  const start = async (moving?: Set<string>): Promise<Proxy> => {
    const proxy = await proxyOn(redis.url, moving);
    proxies.push(proxy);
    return proxy;
  };

  it('re-pins in every other proxy the sessions one proxy published as moved', async () => {
    const [a, b] = [await start(), await start()];
    b.affinity.record('k1', 'a');
    a.shared.publish([
      ['k1', 'b'],
      ['k2', 'c'],
    ]);
    await waitFor(() => b.affinity.nodeOf('k2') === 'c');
    expect(b.affinity.movedNodeOf('k1')).toBe('b');
    expect(b.affinity.movedNodeOf('k2')).toBe('c');
    // Its own message changes nothing in the publisher.
    expect(a.affinity.nodeOf('k2')).toBeUndefined();
  });

  it('ignores malformed messages and moves to nodes it does not know', async () => {
    const b = await start();
    await b.store.publish('moved', 'not json');
    await b.store.publish('moved', JSON.stringify({ from: 'x', moves: [['k3', 42]] }));
    await b.store.publish('moved', JSON.stringify({ from: 'x', moves: [['k4', 'node-9']] }));
    await b.store.publish('moved', JSON.stringify({ from: 'x', moves: [['k5', 'a']] }));
    await waitFor(() => b.affinity.nodeOf('k5') === 'a');
    expect(b.affinity.nodeOf('k3')).toBeUndefined();
    expect(b.affinity.nodeOf('k4')).toBeUndefined();
  });

  it('awaitMove resolves true when the winner reports the move, false when it never does', async () => {
    const [a, b] = [await start(), await start()];
    const told = b.shared.awaitMove('k6', 'c');
    const silent = b.shared.awaitMove('k7', 'c');
    a.shared.publish([['k6', 'c']]);
    expect(await told).toBe(true);
    expect(await silent).toBe(false);
  });

  it('does not re-pin a session this proxy is moving itself, but wakes its waiters', async () => {
    const moving = new Set(['k8']);
    const [a, b] = [await start(), await start(moving)];
    b.affinity.record('k8', 'a');
    const told = b.shared.awaitMove('k8', 'b');
    a.shared.publish([['k8', 'b']]);
    expect(await told).toBe(true);
    expect(b.affinity.nodeOf('k8')).toBe('a');
  });

  it('resync re-pins the sessions it knows to their owners in Redis; counts come from Redis', async () => {
    const [writer, b] = [await start(), await start()];
    b.affinity.record('k9', 'a');
    b.affinity.record('k10', 'a');
    await writer.store.write('a', [{ key: 'k9', ...write(1) }]);
    await writer.store.write('a', [{ key: 'k10', ...write(1) }]);
    // Moved while b heard nothing (no message published).
    await writer.store.transfer('k9', 'a', 'c');
    expect(await b.shared.resync()).toBe(1);
    expect(b.affinity.nodeOf('k9')).toBe('c');
    expect(b.affinity.nodeOf('k10')).toBe('a');
    await b.shared.refreshCounts();
    const counts = await writer.store.countsByOwner();
    expect(b.registry.all.map((node) => node.sessions)).toEqual(
      ['a', 'b', 'c'].map((id) => counts.get(id) ?? 0),
    );
  });

  it('publishes again, on resync, a move whose publish failed, and only if it is still true', async () => {
    // Proxy a's own Redis user may not PUBLISH for a while: its publishes fail, nobody else's do
    // (b sees no outage, so b never resyncs by itself).
    const admin = new Redis(redis.url);
    try {
      await admin.call('ACL', 'SETUSER', 'proxy-a', 'on', '>proxy-a-pass', '~*', '&*', '+@all', '-publish');
      const url = `redis://proxy-a:proxy-a-pass@127.0.0.1:${redis.port}`;
      const a = await proxyOn(url);
      proxies.push(a);
      const b = await start();
      b.affinity.record('k11', 'a');
      b.affinity.record('k12', 'a');
      for (const key of ['k11', 'k12']) await a.store.write('a', [{ key, ...write(1) }]);
      await a.store.transfer('k11', 'a', 'b');
      await a.store.transfer('k12', 'a', 'b');
      a.shared.publish([
        ['k11', 'b'],
        ['k12', 'b'],
      ]);
      await waitFor(() => a.shared.counters.publishFailures === 1);
      // k12 moves on again (another proxy's move): the kept move of k12 is stale now.
      await b.store.transfer('k12', 'b', 'c');
      await admin.call('ACL', 'SETUSER', 'proxy-a', '+publish');
      await a.shared.resync();
      await waitFor(() => b.affinity.nodeOf('k11') === 'b');
      expect(b.affinity.nodeOf('k12')).toBe('a');
      expect(a.shared.counters.published).toBe(1);
    } finally {
      admin.disconnect();
    }
  });

  it('resync does not undo a move that finished while it read the owners', async () => {
    const [writer, b] = [await start(), await start()];
    b.affinity.record('k13', 'a');
    await writer.store.write('a', [{ key: 'k13', ...write(1) }]);
    await writer.store.transfer('k13', 'a', 'b');
    const resyncing = b.shared.resync();
    // While the owners are read (owner b), the session moves on to c and b's table says so.
    b.affinity.assign('k13', 'c', '');
    expect(await resyncing).toBe(0);
    expect(b.affinity.nodeOf('k13')).toBe('c');
  });
});
