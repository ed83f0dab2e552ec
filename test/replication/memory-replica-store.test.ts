import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { MemoryReplicaStore } from '../../src/replication/index.js';
import { StickyLb } from '../../src/stickylb.js';
import { replicaStoreContract } from './replica-store.contract.js';

replicaStoreContract('MemoryReplicaStore', async ({ idleTimeoutMs }) => {
  const store = new MemoryReplicaStore({ idleTimeoutMs });
  store.start();
  return { store, cleanup: () => store.close() };
});

describe('MemoryReplicaStore', () => {
  it('sweeps expired replicas in the background once started', async () => {
    let now = Date.now();
    const store = new MemoryReplicaStore({ idleTimeoutMs: 1000, sweepIntervalMs: 10, now: () => now });
    store.start();
    try {
      await store.write('node-1', [{ key: 'k1', version: 1, data: {}, lastAccessAt: now }]);
      expect(store.stats().records).toBe(1);
      now += 1000;
      await vi.waitFor(() => expect(store.stats()).toMatchObject({ records: 0, expired: 1 }));
    } finally {
      await store.close();
    }
  });

  it('keeps its counts per owner as replicas expire, make room, are swept and removed', async () => {
    let now = Date.now();
    const store = new MemoryReplicaStore({
      idleTimeoutMs: 1000,
      maxSessions: 3,
      sweepIntervalMs: 10,
      now: () => now,
    });
    const record = (key: string) => ({ key, version: 1, data: {}, lastAccessAt: now });
    try {
      await store.write('node-1', [record('a'), record('b')]);
      now += 600;
      await store.write('node-2', [record('c')]);
      now += 400;
      // Full, and 'a' and 'b' have expired: the least recently used one makes room.
      await store.write('node-2', [record('d')]);
      expect(await store.countsByOwner()).toEqual(
        new Map([
          ['node-1', 1],
          ['node-2', 2],
        ]),
      );
      // The sweep takes 'b': node-1 owns nothing, and is no longer listed.
      store.start();
      await vi.waitFor(async () => expect(await store.countsByOwner()).toEqual(new Map([['node-2', 2]])));
      await store.remove('node-2', ['c', 'd']);
      expect(await store.countsByOwner()).toEqual(new Map());
    } finally {
      await store.close();
    }
  });

  it('refuses writes with a version that is not a positive integer, applying none of the batch', async () => {
    const store = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
    const good = { key: 'a', version: 1, data: {}, lastAccessAt: Date.now() };
    await expect(store.write('node-1', [good, { ...good, key: 'b', version: 1.5 }])).rejects.toThrow(
      RangeError,
    );
    expect(await store.read('a')).toBeUndefined();
    await store.close();
  });

  it('never evicts a live replica to make room, however long idle: a full store refuses the write', async () => {
    let now = Date.now();
    const store = new MemoryReplicaStore({ idleTimeoutMs: 30 * 60_000, maxSessions: 2, now: () => now });
    const record = (key: string) => ({ key, version: 1, data: { key }, lastAccessAt: now });
    try {
      await store.write('node-1', [record('a1')]);
      // Idle far past any "active" window, yet alive on node-1 for 29 more minutes.
      now += 61_000;
      await store.write('node-2', [record('b1')]);
      await expect(store.write('node-3', [record('c1')])).rejects.toMatchObject({
        code: 'SLB_REPLICA_UNAVAILABLE',
      });
      expect((await store.read('a1'))?.data).toEqual({ key: 'a1' });
      expect(await store.keysOf('node-1')).toEqual(['a1']);
      // Expired: then it makes room.
      now += 30 * 60_000;
      await store.write('node-3', [record('c1')]);
      expect(await store.read('a1')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("is sized by the proxy for every node's sessions: session.maxSessions bounds each node", async () => {
    const lb = new StickyLb(
      parseConfig({
        proxy: { workers: 1 },
        session: { maxSessions: 1, secret: randomBytes(24).toString('base64url') },
        replication: { secret: randomBytes(24).toString('base64url') },
        nodes: ['node-1', 'node-2', 'node-3'].map((id, i) => ({ id, url: `http://127.0.0.1:${9 + i}` })),
      }),
      createSilentLogger(),
    );
    const record = (key: string) => ({ key, version: 1, data: {}, lastAccessAt: Date.now() });
    try {
      // A full node each: all three replicas fit, a fourth does not.
      for (const node of ['node-1', 'node-2', 'node-3']) {
        expect(await lb.replicas.write(node, [record(`${node}-a`)])).toEqual(['ok']);
      }
      await expect(lb.replicas.write('node-1', [record('node-1-b')])).rejects.toMatchObject({
        code: 'SLB_REPLICA_UNAVAILABLE',
      });
    } finally {
      await lb.close(0);
    }
  });

  it('fails a write with ReplicaStoreError when full of active replicas', async () => {
    const store = new MemoryReplicaStore({ idleTimeoutMs: 60_000, maxSessions: 1 });
    const at = Date.now();
    await store.write('node-1', [{ key: 'a', version: 1, data: {}, lastAccessAt: at }]);
    await expect(
      store.write('node-1', [{ key: 'b', version: 1, data: {}, lastAccessAt: at }]),
    ).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    await store.close();
  });
});
