import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisReplicaStore } from '../../src/replication/index.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startDistributed, type Distributed, type ProxyProcess } from './distributed-harness.js';
import { Client, waitFor } from './harness.js';

const hasRedis = redisServerAvailable();

/** One session, seen through two proxies: each client has its own copy of the id (cookie jar). */
interface Shared {
  a: Client;
  b: Client;
  node: string;
  count: number;
}

const keyOf = (id: string | undefined): string => (id as string).split('.')[0] as string;

/** Sessions created with `writes` counter increments each, alternately through A and B. */
async function createShared(d: Distributed, count: number, writes: number): Promise<Shared[]> {
  const [a, b] = d.proxies as [ProxyProcess, ProxyProcess];
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const creator = new Client(i % 2 === 0 ? a.proxyUrl : b.proxyUrl);
      let last = { node: '', count: 0 };
      for (let w = 0; w < writes; w++) {
        const { status, json } = await creator.request('POST', '/api/counter');
        expect(status).toBe(200);
        last = json;
      }
      const session: Shared = { a: new Client(a.proxyUrl), b: new Client(b.proxyUrl), ...last };
      session.a.sessionId = creator.sessionId;
      session.b.sessionId = creator.sessionId;
      return session;
    }),
  );
}

function busiest(sessions: Shared[]): string {
  const counts = new Map<string, number>();
  for (const { node } of sessions) counts.set(node, (counts.get(node) ?? 0) + 1);
  return [...counts].sort((x, y) => y[1] - x[1])[0]?.[0] as string;
}

/**
 * Each session through A, then through B with the id B's client had (not the one A may
 * have re-issued): both answer from the same node, the counter one step further each time.
 * After a kill (`gone`) each proxy's first request is a GET: a POST that dies on a pooled
 * socket of the dead node is replayed only if this proxy saw the session's latest version,
 * and with clients alternating proxies it may not have (a 502, see the README's limits).
 */
async function expectSameThroughBoth(sessions: Shared[], gone?: string): Promise<void> {
  for (const session of sessions) {
    if (gone !== undefined) {
      const [readA, readB] = await Promise.all([
        session.a.request('GET', '/api/counter'),
        session.b.request('GET', '/api/counter'),
      ]);
      // Whole answers compared, so a failure shows the error body.
      expect([readA.status, readB.status], JSON.stringify([readA.json, readB.json])).toEqual([200, 200]);
      expect(readA.json.node).not.toBe(gone);
      expect(readB.json.node).toBe(readA.json.node);
      expect([readA.json.count, readB.json.count]).toEqual([session.count, session.count]);
    }
    const viaA = await session.a.request('POST', '/api/counter');
    expect(viaA.status, JSON.stringify(viaA.json)).toBe(200);
    expect(viaA.json.count).toBe(session.count + 1);
    if (gone !== undefined) expect(viaA.json.node).not.toBe(gone);
    const viaB = await session.b.request('POST', '/api/counter');
    expect(viaB.status, JSON.stringify(viaB.json)).toBe(200);
    expect(viaB.json.node).toBe(viaA.json.node);
    expect(viaB.json.count).toBe(session.count + 2);
    session.node = viaB.json.node;
    session.count = viaB.json.count;
  }
}

/**
 * Until every node that is up says, in the proxy's /api/state, that Redis is `state` for it:
 * nodes reconnect on their own schedule, and their writes need Redis.
 */
async function nodesReach(proxy: ProxyProcess, state: 'up' | 'down'): Promise<void> {
  await waitFor(async () => {
    const { nodes } = await proxy.state();
    return nodes.every((node: any) => node.state !== 'up' || node.store?.redis === state);
  }, 15_000);
}

describe.skipIf(!hasRedis)('distributed mode: two proxies, three nodes, one real redis-server', () => {
  let redis: RedisServer;
  let d: Distributed | undefined;
  let reader: RedisReplicaStore;
  const all: Shared[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    reader = await RedisReplicaStore.connect({ url: redis.url, idleTimeoutMs: 60_000 });
    d = await startDistributed({ redisUrl: redis.url, proxyCount: 2, nodeCount: 3 });
  }, 60_000);
  afterAll(async () => {
    await d?.close();
    await reader?.close();
    await redis?.stop();
  });

  it('serves a session created through one proxy from the same node through the other', async () => {
    const sessions = await createShared(d as Distributed, 12, 2);
    all.push(...sessions);
    await expectSameThroughBoth(sessions);
    // Both proxies count every session (from Redis's owner indexes), not only those they saw.
    const [a, b] = (d as Distributed).proxies as [ProxyProcess, ProxyProcess];
    await waitFor(async () => {
      const [stateA, stateB] = await Promise.all([a.state(), b.state()]);
      return stateA.sessions.total === sessions.length && stateB.sessions.total === sessions.length;
    });
    const perNode = (state: any) => state.nodes.map((node: any) => node.sessions);
    expect(perNode(await a.state())).toEqual(perNode(await b.state()));
    expect((await a.state()).redis.state).toBe('up');
  });

  it('kill -9 a node: both proxies move its sessions consistently, each exactly once, state intact', async () => {
    const dist = d as Distributed;
    const [a, b] = dist.proxies as [ProxyProcess, ProxyProcess];
    const sessions = await createShared(dist, 24, 3);
    all.push(...sessions);
    const victim = busiest(all);
    const onVictim = all.filter((session) => session.node === victim).length;
    const movedBefore = (await a.state()).failover.moved + (await b.state()).failover.moved;
    const publishedBefore = (await a.state()).redis.moves.published + (await b.state()).redis.moves.published;
    // Copies of the ids as they are now (routed to the victim), used again once it is back.
    const staleIds = all.map((session) => session.b.sessionId);
    await dist.nodes.find((node) => node.id === victim)?.kill('SIGKILL');
    // At once, before either health checker noticed: the same sessions through both proxies
    // side by side (on-demand moves racing between proxies): one node answers both.
    await Promise.all(
      all
        .filter((session) => session.node === victim)
        .map(async (session) => {
          const [viaA, viaB] = await Promise.all([
            session.a.request('GET', '/api/counter'),
            session.b.request('GET', '/api/counter'),
          ]);
          expect([viaA.status, viaB.status]).toEqual([200, 200]);
          expect(viaA.json.node).not.toBe(victim);
          expect(viaB.json.node).toBe(viaA.json.node);
          expect(viaB.json.count).toBe(session.count);
        }),
    );
    // Both proxies see it down by their own health checks, and move its sessions at once.
    await waitFor(async () => {
      const states = await Promise.all([a.state(), b.state()]);
      return states.every((state) => state.nodes.find((node: any) => node.id === victim).state === 'down');
    });
    await expectSameThroughBoth(all, victim);
    const [stateA, stateB] = await Promise.all([a.state(), b.state()]);
    // Every session of the victim was moved by exactly one proxy; none without its state.
    expect(stateA.failover.moved + stateB.failover.moved - movedBefore).toBe(onVictim);
    expect(stateA.failover.lost + stateB.failover.lost).toBe(0);
    // …and told the other proxy once.
    expect(stateA.redis.moves.published + stateB.redis.moves.published - publishedBefore).toBe(onVictim);
    // One owner per session in Redis: the node both proxies route it to.
    const records = await reader.readMany(all.map((session) => keyOf(session.a.sessionId)));
    all.forEach((session, i) => expect(records[i]?.owner).toBe(session.node));
    await dist.nodes.find((node) => node.id === victim)?.restart();
    await Promise.all([a.ready(), b.ready()]);
    // The victim is back and the old ids still name it: each proxy knows where every session
    // went (moved by itself, or told by the other), so none goes back to the empty node.
    for (const [i, session] of all.entries()) {
      for (const proxy of [a, b]) {
        const client = new Client(proxy.proxyUrl);
        client.sessionId = staleIds[i];
        const { status, json } = await client.request('GET', '/api/counter');
        expect(status).toBe(200);
        expect(json).toMatchObject({ node: session.node, count: session.count });
      }
    }
  });

  it('evacuate through proxy A: proxy B sends the moved sessions to their new nodes at once', async () => {
    const [a, b] = (d as Distributed).proxies as [ProxyProcess, ProxyProcess];
    const target = busiest(all);
    const onTarget = all.filter((session) => session.node === target);
    const adoptedBefore = (await b.state()).redis.moves.adopted;
    const response = await fetch(`${a.adminUrl}/api/nodes/${target}/evacuate`, { method: 'POST' });
    expect(response.status).toBe(200);
    // The node stays up (drained): B's health checks see nothing, only A's message tells it.
    await waitFor(async () => (await b.state()).redis.moves.adopted - adoptedBefore >= onTarget.length);
    for (const session of onTarget) {
      const { status, json } = await session.b.request('GET', '/api/counter');
      expect(status).toBe(200);
      expect(json.node).not.toBe(target);
      expect(json.count).toBe(session.count);
      session.node = json.node;
    }
    await expectSameThroughBoth(all);
    await fetch(`${a.adminUrl}/api/nodes/${target}/undrain`, { method: 'POST' });
  });

  it('a node killed while Redis is away: its sessions fail loudly, then move with their state when Redis is back', async () => {
    const dist = d as Distributed;
    const [a, b] = dist.proxies as [ProxyProcess, ProxyProcess];
    const sessions = await createShared(dist, 12, 2);
    all.push(...sessions);
    const victim = busiest(sessions);
    const victimNode = dist.nodes.find((node) => node.id === victim);
    const redisOf = async (proxy: ProxyProcess): Promise<string> => (await proxy.state()).redis.state;
    await redis.restart({
      keepData: true,
      whileDown: async () => {
        await waitFor(async () => (await redisOf(a)) === 'down' && (await redisOf(b)) === 'down');
        await nodesReach(a, 'down');
        await victimNode?.kill('SIGKILL');
        await waitFor(async () =>
          (await Promise.all([a.state(), b.state()])).every(
            (state) => state.nodes.find((node: any) => node.id === victim).state === 'down',
          ),
        );
        // Moving needs the ownership transfer in Redis: refused loudly, not served empty.
        const session = sessions.find((s) => s.node === victim) as Shared;
        const { status, json } = await session.a.request('GET', '/api/counter');
        expect(status).toBe(503);
        expect(json.error).toBe('SLB_REPLICA_UNAVAILABLE');
        const events = (await a.state()).events;
        expect(
          events.some((event: any) => event.type === 'failover:end' && /could not move/.test(event.message)),
        ).toBe(true);
      },
    });
    // Back: each proxy moves the sessions of the node that went down meanwhile, state and all.
    await waitFor(async () => (await redisOf(a)) === 'up' && (await redisOf(b)) === 'up', 15_000);
    await nodesReach(a, 'up');
    await expectSameThroughBoth(all, victim);
    await victimNode?.restart();
    await Promise.all([a.ready(), b.ready()]);
  });

  it('Redis restarts empty mid-run: known sessions keep being served, the outage is reported, state resyncs', async () => {
    const dist = d as Distributed;
    const [a, b] = dist.proxies as [ProxyProcess, ProxyProcess];
    const redisOf = async (proxy: ProxyProcess): Promise<string> => (await proxy.state()).redis.state;
    const outagesBefore = (await a.state()).redis.outages;
    await redis.restart({
      whileDown: async () => {
        await waitFor(async () => (await redisOf(a)) === 'down' && (await redisOf(b)) === 'down');
        await nodesReach(a, 'down');
        expect(await a.metrics()).toMatch(/^stickylb_redis_up\{url="redis:[^"]+"\} 0$/m);
        // Sticky reads from the proxies' caches: right node (moved ones too), right counter.
        for (const session of all) {
          for (const client of [session.a, session.b]) {
            const { status, json } = await client.request('GET', '/api/counter');
            expect(status).toBe(200);
            expect(json).toMatchObject({ node: session.node, count: session.count });
          }
        }
        // A write cannot be replicated: refused loudly, never acknowledged and then lost.
        const write = await (all[0] as Shared).a.request('POST', '/api/counter');
        expect(write.status).toBe(503);
        expect(write.json.error).toBe('SLB_REPLICA_UNAVAILABLE');
        const after = await (all[0] as Shared).a.request('GET', '/api/counter');
        (all[0] as Shared).count = after.json.count;
      },
    });
    await waitFor(async () => (await redisOf(a)) === 'up' && (await redisOf(b)) === 'up', 15_000);
    await nodesReach(a, 'up');
    const state = await a.state();
    expect(state.redis.outages).toBe(outagesBefore + 1);
    expect(state.events.map((event: { type: string }) => event.type)).toContain('redis:down');
    // The nodes re-seed the empty Redis: every replica back, owned by the node that serves it.
    const keys = all.map((session) => keyOf(session.a.sessionId));
    await waitFor(async () => {
      const records = await reader.readMany(keys);
      return records.every((record, i) => record?.owner === (all[i] as Shared).node);
    }, 15_000);
    await expectSameThroughBoth(all);
    // The resynced replicas carry the state through a failover after the outage.
    const victim = busiest(all);
    await dist.nodes.find((node) => node.id === victim)?.kill('SIGKILL');
    await expectSameThroughBoth(all, victim);
  });
});
