import { once } from 'node:events';
import { Agent } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testAffinity, testRegistry } from '../helpers/affinity.js';
import type { AffinityTable } from '../../src/affinity/index.js';
import { DistributedMode } from '../../src/distributed/index.js';
import { createSilentLogger } from '../../src/log.js';
import type { NodeRegistry } from '../../src/nodes/index.js';
import { RedisReplicaStore } from '../../src/replication/index.js';
import { waitFor } from '../integration/harness.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const hasRedis = redisServerAvailable();
const agent = new Agent();
const write = { version: 1, data: { n: 1 }, lastAccessAt: Date.now() };

interface Proxy {
  mode: DistributedMode;
  affinity: AffinityTable;
  registry: NodeRegistry;
  events: string[];
}

describe.skipIf(!hasRedis)('DistributedMode (real redis-server)', () => {
  let redis: RedisServer;
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  });
  afterAll(async () => {
    await redis?.stop();
    agent.destroy();
  });

  async function proxy(
    moveAll: (nodeId: string) => Promise<unknown> = () => Promise.resolve(),
  ): Promise<Proxy> {
    const registry = testRegistry(['a', 'b', 'c'], agent);
    const affinity = testAffinity(registry, 1000);
    const events: string[] = [];
    const mode = await DistributedMode.connect({
      redis: { url: redis.url },
      idleTimeoutMs: 60_000,
      commandTimeoutMs: 2000,
      affinity,
      registry,
      logger: createSilentLogger(),
      isMoving: () => false,
      moveAll,
      onEvent: (type) => events.push(type),
    });
    cleanups.push(async () => {
      mode.stop();
      await mode.store.close();
    });
    return { mode, affinity, registry, events };
  }

  /** Another proxy's store on the same Redis. */
  async function otherStore(): Promise<RedisReplicaStore> {
    const store = await RedisReplicaStore.connect({ url: redis.url, idleTimeoutMs: 60_000 });
    cleanups.push(() => store.close());
    return store;
  }

  /** Drops every subscriber connection on the server; the main connections stay up. */
  async function killSubscribers(): Promise<void> {
    const admin = new Redis(redis.url);
    try {
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    } finally {
      admin.disconnect();
    }
  }

  it('resyncs when only its subscriber connection dropped and came back', async () => {
    const b = await proxy();
    const other = await otherStore();
    b.affinity.record('k1', 'a');
    await other.write('a', [{ key: 'k1', ...write }]);
    // Moved by another proxy while b's subscriber was away: b never hears of it.
    await other.transfer('k1', 'a', 'c');
    await killSubscribers();
    await waitFor(() => b.affinity.nodeOf('k1') === 'c');
    expect(b.events).toContain('redis:resync');
    expect(b.events).not.toContain('redis:down');
  });

  it('comes back and resyncs after Redis refused its channels and allowed them again', async () => {
    const b = await proxy();
    const other = await otherStore();
    b.affinity.record('k1', 'a');
    await other.write('a', [{ key: 'k1', ...write }]);
    const admin = new Redis(redis.url);
    cleanups.push(async () => {
      await admin.call('ACL', 'SETUSER', 'default', 'allchannels');
      admin.disconnect();
    });
    // Channels refused: Redis drops the subscriber, which reconnects ('ready') and is refused.
    await admin.call('ACL', 'SETUSER', 'default', 'resetchannels');
    await waitFor(() => !b.mode.store.isSubscribed);
    await other.transfer('k1', 'a', 'c');
    // Allowed again. (ioredis reconnects a subscriber whose SUBSCRIBE was refused, so this passes
    // without the retry of a re-subscribe that failed on a live connection too: that retry, for
    // a SUBSCRIBE that timed out on a busy Redis, has no test of its own.)
    await admin.call('ACL', 'SETUSER', 'default', 'allchannels');
    await waitFor(() => b.affinity.nodeOf('k1') === 'c');
    expect(b.mode.store.isSubscribed).toBe(true);
  });

  it('runs one resync at a time and one more for what was asked meanwhile', async () => {
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const b = await proxy(async () => {
      calls++;
      maxActive = Math.max(maxActive, ++active);
      await held;
      active--;
    });
    // A down node: every resync ends by moving its sessions (held here until released).
    b.registry.setHealthy('a', false);
    await killSubscribers();
    await waitFor(() => calls === 1);
    // Asked twice more while the first runs: one more resync after it, not two beside it.
    for (let i = 0; i < 2; i++) {
      const resubscribed = once(b.mode.store, 'resubscribed');
      await killSubscribers();
      await resubscribed;
    }
    expect(calls).toBe(1);
    release();
    // Every resync that will run, including one asked for while another ran.
    while (b.mode.resyncing !== undefined) await b.mode.resyncing;
    expect(calls).toBe(2);
    expect(maxActive).toBe(1);
    expect(b.events.filter((type) => type === 'redis:resync')).toHaveLength(2);
  });
});
